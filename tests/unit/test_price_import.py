"""What an import adds to the price book: new models at the source's dates, changed prices
from their dates, nothing at a date the book already covers, an operator's correction held,
and nothing at all the second time."""

from datetime import datetime, timezone
from decimal import Decimal as D

from billing.price_import import plan_import
from billing.price_source import EPOCH, SourceBook, SourceModel
from billing.pricebook import PriceBook
from billing.pricing import PriceVersion, Tier

NOW = datetime(2026, 12, 3, tzinfo=timezone.utc)
CUT = datetime(2026, 8, 21, tzinfo=timezone.utc)
LATER = datetime(2027, 1, 1, tzinfo=timezone.utc)


def version(model, at, inp, out, source="catalog", vid=None, **extra):
    return PriceVersion(model, at, (Tier(input=D(inp), output=D(out)),), id=vid, source=source, **extra)


def source(*models):
    return SourceBook("genai-prices 9.9", tuple(models))


def test_a_new_model_gets_every_version_at_its_dates():
    plan = plan_import(PriceBook([], {}), source(SourceModel("gpt-9", (version("gpt-9", EPOCH, "2", "10"),
                                                                        version("gpt-9", CUT, "1", "5")),
                                                             aliases=("gpt-9-*",))), NOW)
    assert [(c.kind, c.version.effective_from) for c in plan.changes] == [("new_model", EPOCH), ("new_model", CUT)]
    assert plan.aliases == (("gpt-9-*", "gpt-9"),)


def test_a_change_after_the_books_newest_version_keeps_its_date():
    book = PriceBook([version("sol", EPOCH, "5", "30", vid=1)], {})
    plan = plan_import(book, source(SourceModel("sol", (version("sol", EPOCH, "5", "30"),
                                                        version("sol", CUT, "4", "20")))), NOW)
    assert [(c.kind, c.version.effective_from, c.replaces.id) for c in plan.changes] == [("new_price", CUT, 1)]


def test_a_price_at_a_date_the_book_covers_applies_from_the_import():
    # the source says 6 since 1970; the book says 5 since 1970: a new version from now, the past kept
    book = PriceBook([version("m", EPOCH, "5", "30", vid=1)], {})
    plan = plan_import(book, source(SourceModel("m", (version("m", EPOCH, "6", "30"),))), NOW)
    assert [(c.version.effective_from, c.version.tiers[0].input) for c in plan.changes] == [(NOW, D(6))]
    # ...unless a later change of the source has already replaced it
    plan = plan_import(book, source(SourceModel("m", (version("m", EPOCH, "6", "30"),
                                                      version("m", CUT, "7", "30")))), NOW)
    assert [c.version.effective_from for c in plan.changes] == [CUT]
    # a change dated in the future is kept for its date
    plan = plan_import(book, source(SourceModel("m", (version("m", EPOCH, "5", "30"),
                                                      version("m", LATER, "7", "30")))), NOW)
    assert [c.version.effective_from for c in plan.changes] == [LATER]


def test_what_the_source_does_not_price_is_kept_from_the_book():
    kept = version("m", EPOCH, "5", "30", vid=1, tools={"container.4g": D("120")}, max_output_tokens=128_000,
                   service_tiers={"ultrafast": (Tier(input=D(15), output=D(90)),)})
    plan = plan_import(PriceBook([kept], {}), source(SourceModel("m", (version("m", CUT, "4", "20",
                                                                                 tools={"web_search": D(10)}),))), NOW)
    (change,) = plan.changes
    assert change.version.tools == {"container.4g": D("120"), "web_search": D(10)}
    assert change.version.max_output_tokens == 128_000 and "ultrafast" in change.version.service_tiers


def test_an_operators_correction_is_held_unless_replaced():
    book = PriceBook([version("m", EPOCH, "5", "30", vid=1), version("m", CUT, "3", "30", source="cli", vid=2)], {})
    model = SourceModel("m", (version("m", EPOCH, "5", "30"), version("m", LATER, "4", "20")))
    (held,) = plan_import(book, source(model), NOW).changes
    assert held.kind == "held" and held.version is None and "operator" in held.note
    # replaced: the source's price from the import on, then its dated change
    replaced = plan_import(book, source(model), NOW, replace_corrections=True).changes
    assert [(c.kind, c.version.effective_from, c.version.tiers[0].input) for c in replaced] == [
        ("new_price", NOW, D(5)), ("new_price", LATER, D(4))]


def test_a_second_import_changes_nothing():
    model = SourceModel("sol", (version("sol", EPOCH, "5", "30"), version("sol", CUT, "4", "20")))
    book = PriceBook([version("sol", EPOCH, "6", "30", vid=1)], {})
    first = plan_import(book, source(model), NOW)
    after = PriceBook([*book.all_versions(), *(v.__class__(**{**v.__dict__, "id": 10 + i})
                                               for i, v in enumerate(first.versions))], {})
    second = plan_import(after, source(model), NOW)
    assert first.changes and not second.changes and second.unchanged == 1


def test_names_the_book_already_gives_meaning_to_are_not_taken():
    book = PriceBook([version("a", EPOCH, "1", "1", vid=1)], {"shared": "a"})
    plan = plan_import(book, source(SourceModel("b", (version("b", EPOCH, "2", "2"),), aliases=("shared", "b-1"))),
                       NOW)
    assert plan.aliases == (("b-1", "b"),)


def test_only_the_models_asked_for():
    plan = plan_import(PriceBook([], {}), source(SourceModel("gpt-5", (version("gpt-5", EPOCH, "1", "1"),)),
                                                 SourceModel("o3", (version("o3", EPOCH, "1", "1"),))), NOW,
                       models="gpt-*")
    assert [c.model for c in plan.changes] == ["gpt-5"]
    plan = plan_import(PriceBook([], {}), source(SourceModel("gpt-5", (version("gpt-5", EPOCH, "1", "1"),)),
                                                 SourceModel("o3", (version("o3", EPOCH, "1", "1"),))), NOW,
                       skip=("gpt-*",))
    assert [c.model for c in plan.changes] == ["o3"]
