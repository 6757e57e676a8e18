"""What a reply's built-in tools bill outside `usage`: searches by variant and action,
containers by memory (code interpreter and hosted shell), generated images by model,
quality and size."""

import base64
import struct
import zlib

import pytest

from decimal import Decimal as D

from datetime import datetime, timezone

from billing.catalog import load_catalog, shipped_catalog_path
from billing.pricebook import PriceBook
from billing.request_bounds import BUILT_IN_TOOLS
from billing.tool_units import (image_size, merged, named_containers, remembered, request_units, tool_family,
                                units_in_output)

CATALOG = load_catalog(shipped_catalog_path())
SHIPPED = PriceBook(CATALOG.versions, CATALOG.aliases)
NOW = datetime(2026, 12, 3, tzinfo=timezone.utc)


def search(action="search"):
    return {"type": "web_search_call", "id": "ws", "status": "completed", "action": {"type": action, "query": "q"}}


def png(width, height) -> str:
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + header
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return base64.b64encode(data + b"\0" * 200).decode()


def jpeg(width, height) -> str:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    tables = (b"\xff\xdb" + struct.pack(">H", 67) + b"\0" + b"\x01" * 64) * 2
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\0" * 9
    return base64.b64encode(b"\xff\xd8" + app0 + tables + frame).decode()


@pytest.mark.parametrize(("output", "tools", "units"), [
    # every search bills; opening a page and finding in it do not
    ([search(), search("open_page"), search("find_in_page"), search()], [{"type": "web_search"}],
     (("web_search", 2),)),
    # a search call whose action is missing or unreadable still bills
    ([{"type": "web_search_call", "id": "ws"}, {"type": "web_search_call", "action": "x"}], [],
     (("web_search", 2),)),
    # the preview tool, under its dated name, bills as web_search_preview...
    ([search()], [{"type": "web_search_preview_2025_03_11"}], (("web_search_preview", 1),)),
    # both variants offered: the call does not say which it was, so it names both (billed at the dearer)
    ([search()], [{"type": "web_search_preview"}, {"type": "web_search_2025_08_26"}],
     (("web_search|web_search_preview", 1),)),
    # one container per distinct id, at the memory the tool asked for
    ([{"type": "code_interpreter_call", "container_id": "cntr_a"},
      {"type": "code_interpreter_call", "container_id": "cntr_a"}],
     [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "4g"}}], (("container.4g", 1),)),
    # a container made beforehand (an id in the tool): its size is not shown, 1g
    ([{"type": "code_interpreter_call", "container_id": "cntr_b"}],
     [{"type": "code_interpreter", "container": "cntr_b"}], (("container.1g", 1),)),
    # hosted shell containers count too, at the shell's memory; two containers, two units
    ([{"type": "shell_call", "environment": {"type": "container_reference", "container_id": "cntr_s"}},
      {"type": "code_interpreter_call", "container_id": "cntr_c"}],
     [{"type": "shell", "environment": {"type": "container_auto", "memory_limit": "16g"}},
      {"type": "code_interpreter", "container": {"type": "auto"}}],
     (("container.16g", 1), ("container.1g", 1))),
    # a shell running locally bills no container
    ([{"type": "shell_call", "environment": {"type": "local"}}], [{"type": "shell"}], ()),
    # an image at the tool's model, quality and size; a failed one bills nothing
    ([{"type": "image_generation_call", "status": "completed", "result": png(1024, 1024)},
      {"type": "image_generation_call", "status": "failed"}],
     [{"type": "image_generation", "model": "gpt-image-1", "quality": "high", "size": "1024x1024"}],
     (("image_generation.gpt-image-1.high.1024x1024", 1),)),
    # size auto: read from the image itself; a dated model is priced as its model
    ([{"type": "image_generation_call", "status": "completed", "result": png(1536, 1024)},
      {"type": "image_generation_call", "status": "completed", "result": jpeg(1024, 1536)}],
     [{"type": "image_generation", "model": "gpt-image-1-mini-2025-10-06", "quality": "low", "size": "auto"}],
     (("image_generation.gpt-image-1-mini.low.1024x1536", 1), ("image_generation.gpt-image-1-mini.low.1536x1024", 1))),
])
def test_units_hand_worked(output, tools, units):
    assert units_in_output(output, tools).units == units


def test_auto_quality_is_billed_at_the_dearest_and_flagged():
    output = [{"type": "image_generation_call", "status": "completed", "result": png(1024, 1024)}]
    use = units_in_output(output, [{"type": "image_generation"}])
    assert use.units == (("image_generation.gpt-image-1.high.1024x1024", 1),)  # the tool's default model
    assert use.flags == ("image_quality_assumed",)


def test_a_container_paid_for_in_its_session_is_not_billed_again():
    output = [{"type": "code_interpreter_call", "container_id": "cntr_a"},
              {"type": "shell_call", "environment": {"type": "container_reference", "container_id": "cntr_b"}}]
    tools = [{"type": "code_interpreter", "container": "cntr_a"},
             {"type": "shell", "environment": {"type": "container_reference", "container_id": "cntr_b"}}]
    use = units_in_output(output, tools)
    assert use.units == (("container.1g", 2),)
    assert use.containers == (("cntr_a", "container.1g"), ("cntr_b", "container.1g"))
    # cntr_a was made as 64g and its session goes on; cntr_b was made as 4g and starts a new one
    known = {"cntr_a": ("container.64g", False), "cntr_b": ("container.4g", True)}
    assert remembered(use.units, use.containers, known) == (
        (("container.4g", 1),), (("cntr_a", "container.64g"), ("cntr_b", "container.4g")))
    assert remembered(use.units, use.containers, {"cntr_a": ("container.1g", False),
                                                  "cntr_b": ("container.1g", False)})[0] == ()
    assert remembered(use.units, use.containers, {}) == (use.units, use.containers)


@pytest.mark.parametrize(("output", "tools", "units", "flags"), [
    # five searches, both variants offered: each names both, billed at the dearer
    ([search()] * 5, [{"type": "web_search"}, {"type": "web_search_preview"}],
     (("web_search|web_search_preview", 5),), ("tool_unit_assumed",)),
    # a 1g and a 64g code interpreter, two containers: which made which is not shown
    ([{"type": "code_interpreter_call", "container_id": "cntr_1"},
      {"type": "code_interpreter_call", "container_id": "cntr_2"}],
     [{"type": "code_interpreter", "container": {"type": "auto"}},
      {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "64g"}}],
     (("container.1g|container.64g", 2),), ("tool_unit_assumed",)),
    # a dated hosted shell name is a hosted shell
    ([{"type": "shell_call", "environment": {"type": "container_reference", "container_id": "cntr_s"}}],
     [{"type": "shell_2026_01_15", "environment": {"type": "container_auto", "memory_limit": "64g"}}],
     (("container.64g", 1),), ()),
    # a hosted shell offered after a local one: the hosted shell's memory, not the local one's default
    ([{"type": "shell_call", "environment": {"type": "container_reference", "container_id": "cntr_s"}}],
     [{"type": "local_shell"}, {"type": "shell", "environment": {"type": "local"}},
      {"type": "shell", "environment": {"type": "container_auto", "memory_limit": "16g"}}],
     (("container.16g", 1),), ()),
    # a container the tool named, beside one it makes: the named one is 1g here (its record says more)
    ([{"type": "code_interpreter_call", "container_id": "cntr_old"},
      {"type": "code_interpreter_call", "container_id": "cntr_new"}],
     [{"type": "code_interpreter", "container": "cntr_old"},
      {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "4g"}}],
     (("container.1g", 1), ("container.4g", 1)), ()),
    # two image tools: each image names both tools' units
    ([{"type": "image_generation_call", "status": "completed", "result": png(1024, 1024)}] * 3,
     [{"type": "image_generation", "model": "gpt-image-1-mini", "quality": "low", "size": "1024x1024"},
      {"type": "image_generation", "model": "gpt-image-1", "quality": "high", "size": "1536x1024"}],
     (("image_generation.gpt-image-1-mini.low.1024x1024|image_generation.gpt-image-1.high.1536x1024", 3),),
     ("tool_unit_assumed",)),
])
def test_several_tools_of_a_kind_bill_as_the_dearest_they_may_be(output, tools, units, flags):
    use = units_in_output(output, tools)
    assert (use.units, use.flags) == (units, flags)


def test_alternatives_are_priced_at_the_dearest():
    version = SHIPPED.resolve("gpt-4.1", NOW).version  # a non-reasoning model: preview is 25, plain 10
    assert version.tool_price("web_search|web_search_preview") == version.tool_price("web_search_preview") \
        == D(25)
    assert version.tool_price("container.1g|container.64g") == version.tool_price("container.64g")


def test_merged_takes_the_most_of_each_unit():
    assert merged((("a", 2), ("b", 1)), (("a", 1), ("c", 3)), ()) == (("a", 2), ("b", 1), ("c", 3))


@pytest.mark.parametrize(("kind", "family"), [
    ("web_search_preview_2025_03_11", "web_search_preview"), ("web_search_2025_08_26", "web_search"),
    ("file_search_2026_01_15", "file_search"), ("code_interpreter_2027_02_02", "code_interpreter"),
    ("local_shell", "shell"), ("web_search_previewer", "web_search_previewer"), ("", "")])
def test_a_tool_family_drops_a_version_date(kind, family):
    assert tool_family(kind) == family


def test_the_containers_a_requests_tools_name():
    tools = [{"type": "code_interpreter", "container": "cntr_a"},
             {"type": "code_interpreter", "container": {"type": "auto"}},
             {"type": "shell", "environment": {"type": "container_reference", "container_id": "cntr_b"}},
             {"type": "local_shell", "environment": {"type": "container_reference", "container_id": "cntr_c"}},
             {"type": "code_interpreter", "container": "cntr_a"}, {"type": "code_interpreter", "container": 5},
             {"type": "shell_2026_01_15", "environment": {"type": "container_reference", "container_id": "cntr_d"}},
             {"type": "a_tool_of_next_year", "container": "cntr_e"}]
    # every id a tool names, whatever its type: a local shell's too (no tool may name another's container)
    assert named_containers(tools) == ["cntr_a", "cntr_b", "cntr_c", "cntr_d", "cntr_e"]
    assert named_containers("x") == named_containers([None, {"type": None}]) == []


@pytest.mark.parametrize(("result", "size"), [
    (png(1024, 1536), "1024x1536"), (jpeg(1536, 1024), "1536x1024"), ("not base64!", None),
    (base64.b64encode(b"GIF89a....").decode(), None), ("", None), (None, None), (12, None),
])
def test_image_size_from_its_header(result, size):
    assert image_size(result) == size


def test_units_a_requests_tools_may_bill():
    tools = [{"type": "web_search_preview_2025_03_11"}, {"type": "file_search"},
             {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "4g"}},
             {"type": "shell", "environment": {"type": "local"}},
             {"type": "image_generation", "model": "gpt-image-1-mini", "size": "auto"},
             {"type": "mcp", "server_url": "https://x"}, "not a tool", {"type": 7}]
    assert request_units(tools, BUILT_IN_TOOLS) == (
        ("container.4g", False), ("file_search", True), ("image_generation.gpt-image-1-mini.*.*", True),
        ("mcp", True), ("web_search_preview", True))
    # identical container tools may make a container each; a named one is priced as it was made
    five = [{"type": "shell", "environment": {"type": "container_auto", "memory_limit": "64g"}}] * 5
    assert request_units(five, BUILT_IN_TOOLS) == (("container.64g", False),) * 5
    named = [{"type": "code_interpreter", "container": "cntr_a"}, {"type": "local_shell"},
             {"type": "file_search_2026_01_15"}]
    assert request_units(named, BUILT_IN_TOOLS, {"cntr_a": "container.16g"}) == (
        ("container.16g", False), ("file_search", True))


def test_a_worst_case_prices_the_dearest_call_each_time_and_each_container_once():
    from billing.quota import worst_tool_units
    version = SHIPPED.resolve("gpt-5.5", NOW).version
    units = request_units([{"type": "code_interpreter", "container": {"type": "auto"}},
                           {"type": "web_search"},
                           {"type": "image_generation", "quality": "low"}], BUILT_IN_TOOLS)
    # ten calls at the dearest per call (a low gpt-image-1 image of a tall or wide size: 16.00 per
    # 1,000), and the 1g container once (not 1.92 ten times over)
    assert worst_tool_units(units, version, 10) == (("container.1g", 1),
                                                    ("image_generation.gpt-image-1.low.1024x1536", 10))
    # five 64g shells: five containers, as many as there are calls to run in them (dearest first)
    shells = request_units([{"type": "shell", "environment": {"type": "container_auto", "memory_limit": "64g"}}] * 5
                           + [{"type": "code_interpreter", "container": {"type": "auto"}}], BUILT_IN_TOOLS)
    assert worst_tool_units(shells, version, 10) == (("container.1g", 1), ("container.64g", 5))
    assert worst_tool_units(shells, version, 3) == (("container.64g", 3),)
    # a model priced by tokens only: the dearest image there is
    tokens_only = request_units([{"type": "image_generation", "model": "gpt-image-2"}], BUILT_IN_TOOLS)
    assert worst_tool_units(tokens_only, version, 2) == (("image_generation.gpt-image-1.high.1024x1536", 2),)


def test_an_image_without_a_price_of_its_own_is_never_free():
    from decimal import Decimal as D
    from billing.pricing import PriceVersion, Tier, tool_calls_cost, unpriced
    from billing.usage import Usage
    from billing.catalog import EPOCH
    version = PriceVersion("m", EPOCH, (Tier(input=D(1), output=D(1)),), tools={
        "image_generation.gpt-image-1.high.1024x1024": D("167"),
        "image_generation.gpt-image-1-mini.high.1024x1024": D("36"),
        "image_generation.gpt-image-1.high.1536x1024": D("250")})
    # a model priced by tokens only (gpt-image-2): the dearest image of its quality and size, 0.167
    usage = Usage(tool_calls=(("image_generation.gpt-image-2.high.1024x1024", 1),))
    assert tool_calls_cost(usage, version) == D("0.167")
    assert unpriced(usage, version) == ("tool_price_assumed:image_generation.gpt-image-2.high.1024x1024",)
    # a size priced nowhere: the dearest image there is, 0.25
    odd = Usage(tool_calls=(("image_generation.gpt-image-1.high.2048x2048", 2),))
    assert tool_calls_cost(odd, version) == D("0.5")
