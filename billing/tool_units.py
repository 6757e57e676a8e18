"""What a reply's built-in tools bill outside `usage`, as price units. Pure.

Each unit is priced per 1,000 in a price version's `tools`:
- `web_search` / `web_search_preview`: a `web_search_call` whose action searched. Opening
  a page or finding in it carries no call fee. The variant is the tool the reply offered:
  `web_search_preview` only when that variant was offered and plain web search was not.
- `file_search`: a `file_search_call`.
- `container.1g` ... `container.64g`: a distinct container that code interpreter or hosted
  shell ran in, by the memory limit its tool asked for (1g when it names none, or when the
  container was made beforehand, whose size the reply does not show). The upstream bills a
  container once per 20-minute session: the containers are kept (`ToolUse.containers`) so
  that one an earlier reply paid for within its session is not billed again (`continuing`).
- `image_generation.MODEL.QUALITY.SIZE`: an image the image generation tool made. The
  model, quality and size come from the tool in the reply. A size of `auto` is read from
  the image itself (its PNG, JPEG or WebP header). A quality of `auto` is billed as
  `high`, the dearest, and flagged `image_quality_assumed`.
Anything that is not the shape expected counts as absent: every value is any JSON.
"""

import base64
import binascii
import re
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any

WEB_SEARCH, WEB_SEARCH_PREVIEW, FILE_SEARCH = "web_search", "web_search_preview", "file_search"
FEE_FREE_ACTIONS = frozenset({"open_page", "find_in_page"})
MEMORY_LIMITS = ("1g", "4g", "16g", "64g")
DEFAULT_MEMORY = "1g"
IMAGE_TOOL, DEFAULT_IMAGE_MODEL = "image_generation", "gpt-image-1"
IMAGE_QUALITIES = ("low", "medium", "high")
ASSUMED_QUALITY = "high"  # `auto` leaves the choice to the upstream: bill the dearest, flagged
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # a snapshot's date suffix: priced as its model
_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,40}")
_SIZE = re.compile(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}")
_HEADER_BASE64_CHARS = 1024  # 768 bytes: past a JPEG's tables to its frame header


def request_units(tools: Any, billed_names: dict[str, str]) -> tuple[tuple[str, bool], ...]:
    """The units a request's built-in tools may bill, as patterns (`*` where the upstream
    chooses), each with whether it bills per call (else once a reply: a container):
    what its worst case is priced at. `billed_names`: the name each other built-in tool's
    calls bill under (`billing.request_bounds.BUILT_IN_TOOLS`)."""
    units: set[tuple[str, bool]] = set()
    for tool in tools if isinstance(tools, list) else ():
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str):
            continue
        family = _tool_family(kind)
        if family in (WEB_SEARCH, WEB_SEARCH_PREVIEW, FILE_SEARCH):
            units.add((family, True))
        elif family == "code_interpreter":
            units.add((container_unit(_memory(tool.get("container"))), False))
        elif family == "shell":
            environment = tool.get("environment")
            if isinstance(environment, dict) and environment.get("type") in ("container_auto", "container_reference"):
                units.add((container_unit(_memory(environment)), False))
            elif kind == "shell" and not isinstance(environment, dict):
                units.add((container_unit(DEFAULT_MEMORY), False))  # no environment said: perhaps hosted
        elif family == IMAGE_TOOL:
            offered = _Offered([tool])._image
            model = offered.get("model")
            model = _DATED.sub("", model.lower()) if isinstance(model, str) and _NAME.fullmatch(model.lower()) \
                else DEFAULT_IMAGE_MODEL
            quality = offered.get("quality") if offered.get("quality") in IMAGE_QUALITIES else "*"
            size = offered.get("size") if isinstance(offered.get("size"), str) and _SIZE.fullmatch(offered["size"]) \
                else "*"
            units.add((image_unit(model, quality, size), True))
        elif kind in billed_names:
            units.add((billed_names[kind], True))
    return tuple(sorted(units))


def container_unit(memory: str) -> str:
    return f"container.{memory}"


def image_unit(model: str, quality: str, size: str) -> str:
    return f"{IMAGE_TOOL}.{model}.{quality}.{size}"


@dataclass(frozen=True)
class ToolUse:
    units: tuple[tuple[str, int], ...] = ()  # (unit, count), sorted by unit
    flags: tuple[str, ...] = ()
    containers: tuple[tuple[str, str], ...] = ()  # (container id, its unit), sorted


def units_in_output(output: Any, tools: Any) -> ToolUse:
    """What a reply's `output` items bill, read with the `tools` it says it offered."""
    if not isinstance(output, list):
        return ToolUse()
    offered = _Offered(tools)
    counts: Counter[str] = Counter()
    containers: dict[str, str] = {}  # container id -> memory
    flags: set[str] = set()
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "web_search_call" and _searched(item.get("action")):
            counts[offered.web_search] += 1
        elif kind == "file_search_call":
            counts[FILE_SEARCH] += 1
        elif kind == "code_interpreter_call" and isinstance(item.get("container_id"), str):
            containers.setdefault(item["container_id"][:128], offered.interpreter_memory)
        elif kind == "shell_call" and (container := _shell_container(item.get("environment"))):
            containers.setdefault(container, offered.shell_memory)
        elif kind == "image_generation_call" and item.get("status") != "failed":
            unit, assumed = offered.image_unit(item.get("result"))
            counts[unit] += 1
            if assumed:
                flags.add("image_quality_assumed")
    for memory in containers.values():
        counts[container_unit(memory)] += 1
    return ToolUse(tuple(sorted(counts.items())), tuple(sorted(flags)),
                   tuple(sorted((container, container_unit(memory)) for container, memory in containers.items())))


def continuing(units: tuple[tuple[str, int], ...], containers: tuple[tuple[str, str], ...],
               in_session: set[str]) -> tuple[tuple[str, int], ...]:
    """`units` without the containers whose session an earlier reply already paid for."""
    counts = Counter(dict(units))
    for container, unit in containers:
        if container in in_session:
            counts[unit] -= 1
    return tuple(sorted((unit, count) for unit, count in counts.items() if count > 0))


def _searched(action: Any) -> bool:
    """A web search call bills unless its action is known to be one without a fee."""
    return not (isinstance(action, dict) and action.get("type") in FEE_FREE_ACTIONS)


def _shell_container(environment: Any) -> str | None:
    if isinstance(environment, dict) and environment.get("type") == "container_reference":
        container = environment.get("container_id")
        return container[:128] if isinstance(container, str) else None
    return None


def _memory(config: Any) -> str:
    memory = config.get("memory_limit") if isinstance(config, dict) else None
    return memory if memory in MEMORY_LIMITS else DEFAULT_MEMORY


class _Offered:
    """The settings of the built-in tools a reply says it offered."""

    def __init__(self, tools: Any):
        by_type: dict[str, dict] = {}
        for tool in tools if isinstance(tools, list) else ():
            if isinstance(tool, dict) and isinstance(tool.get("type"), str):
                by_type.setdefault(_tool_family(tool["type"]), tool)
        self.web_search = WEB_SEARCH_PREVIEW if WEB_SEARCH_PREVIEW in by_type and WEB_SEARCH not in by_type \
            else WEB_SEARCH
        interpreter = by_type.get("code_interpreter", {}).get("container")
        self.interpreter_memory = _memory(interpreter)
        self.shell_memory = _memory(by_type.get("shell", {}).get("environment"))
        self._image = by_type.get(IMAGE_TOOL, {})

    def image_unit(self, result: Any) -> tuple[str, bool]:
        """The unit of one generated image, and whether its quality was assumed."""
        model = self._image.get("model")
        model = _DATED.sub("", model.lower()) if isinstance(model, str) and _NAME.fullmatch(model.lower()) \
            else DEFAULT_IMAGE_MODEL
        quality = self._image.get("quality")
        assumed = quality not in IMAGE_QUALITIES
        size = self._image.get("size")
        if not (isinstance(size, str) and _SIZE.fullmatch(size)):
            size = image_size(result) or "1024x1024"
        return image_unit(model, ASSUMED_QUALITY if assumed else quality, size), assumed


def _tool_family(kind: str) -> str:
    """A tool type without its version date: `web_search_preview_2025_03_11` is
    `web_search_preview`, `web_search_2025_08_26` is `web_search`."""
    for family in (WEB_SEARCH_PREVIEW, WEB_SEARCH):
        if kind == family or kind.startswith(family + "_2"):
            return family
    return "shell" if kind == "local_shell" else kind


def image_size(result: Any) -> str | None:
    """`WIDTHxHEIGHT` of a base64 PNG, JPEG or WebP image, read from its header; None when
    it is none of these or cannot be read."""
    if not isinstance(result, str) or not result:
        return None
    head = result[:_HEADER_BASE64_CHARS]
    try:
        data = base64.b64decode(head[:len(head) - len(head) % 4], validate=False)
    except (binascii.Error, ValueError):
        return None
    size = _png_size(data) or _webp_size(data) or _jpeg_size(data)
    return f"{size[0]}x{size[1]}" if size and all(0 < side < 100_000 for side in size) else None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The first start-of-frame marker within the bytes read (the header of a generated
    image; a JPEG with a long EXIF block ahead of it is not read, and gets the default)."""
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker, length = data[at + 1], int.from_bytes(data[at + 2:at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        at += 2 + length
    return None
