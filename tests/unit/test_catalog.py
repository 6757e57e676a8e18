from decimal import Decimal

import pytest

from billing.catalog import CatalogError, load_catalog, parse_catalog, shipped_catalog_path


def test_shipped_catalog_has_the_contract_seed_prices():
    catalog = load_catalog(shipped_catalog_path())
    seed = next(v for v in catalog.versions if v.model == "seed-1-6")
    low, high = seed.tiers
    assert (low.up_to_input_tokens, low.input, low.cached_price, low.output) == \
        (128_000, Decimal("0.25"), Decimal("0.05"), Decimal("2.00"))
    assert (high.up_to_input_tokens, high.input, high.cached_price, high.output) == \
        (256_000, Decimal("0.50"), Decimal("0.05"), Decimal("4.00"))
    flash = next(v for v in catalog.versions if v.model == "seed-1-6-flash")
    assert [(t.input, t.cached_price, t.output) for t in flash.tiers] == [
        (Decimal("0.075"), Decimal("0.015"), Decimal("0.30")), (Decimal("0.10"), Decimal("0.015"), Decimal("0.80"))]
    assert all(v.source for v in catalog.versions)


def test_cached_left_out_is_ten_percent_of_input():
    catalog = parse_catalog('[models.m]\ninput = "2.50"\noutput = "10"\n', "x.toml")
    tier = catalog.versions[0].tiers[0]
    assert tier.cached is None and tier.cached_price == Decimal("0.250")


def test_toml_numbers_stay_exact_decimals():
    catalog = parse_catalog("[models.m]\ninput = 0.1\noutput = 0.3\n", "x.toml")
    assert catalog.versions[0].tiers[0].input == Decimal("0.1")


@pytest.mark.parametrize(("text", "message"), [
    ('[models.m]\ninput = "abc"\noutput = "1"\n', "x.toml:1: models.m.input"),
    ('\n\n[models."m"]\noutput = "1"\n', "x.toml:3: models.m.input: missing"),
    ('[models.m]\ninput = "1"\noutput = "1"\nsauce = 1\n', "models.m.sauce: unknown field"),
    ('[models.m]\ninput = "-1"\noutput = "1"\n', "models.m.input: must be a finite, non-negative"),
    ('[models.m]\naliases = "x"\ninput = "1"\noutput = "1"\n', "models.m.aliases"),
    ('[models.m]\n[[models.m.tiers]]\nup_to_input_tokens = 0\ninput = "1"\noutput = "1"\n',
     "models.m.tiers[0].up_to_input_tokens"),
    ('[models.m]\neffective_from = "yesterday"\ninput = "1"\noutput = "1"\n', "models.m.effective_from"),
    ("[models.m\n", "x.toml: "),
])
def test_malformed_catalog_names_file_line_and_field(text, message):
    with pytest.raises(CatalogError) as error:
        parse_catalog(text, "x.toml")
    assert message in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CatalogError, match="nope.toml"):
        load_catalog(tmp_path / "nope.toml")


def test_prices_file_replaces_shipped_models_one_by_one(tmp_path):
    from proxy.app import merged_catalog
    from proxy.config.settings import Settings

    override = tmp_path / "prices.toml"
    override.write_text('[models."gpt-4o"]\ninput = "9"\noutput = "9"\n\n'
                        '[models."in-house"]\ninput = "1"\noutput = "2"\naliases = ["in-house-*"]\n')
    catalog = merged_catalog(Settings(prices_file=override))
    by_model = {v.model: v for v in catalog.versions}
    assert by_model["gpt-4o"].tiers[0].input == Decimal("9")
    assert by_model["in-house"].tiers[0].output == Decimal("2") and catalog.aliases["in-house-*"] == "in-house"
    assert by_model["seed-1-6"].tiers[0].input == Decimal("0.25")  # untouched
    assert "gpt-4o-2*" not in catalog.aliases  # the replaced model's shipped aliases go with it
