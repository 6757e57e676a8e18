"""What a reply's built-in tools bill outside `usage`, as price units. Pure.

Each unit is priced per 1,000 in a price version's `tools`:
- `web_search` / `web_search_preview`: a `web_search_call` whose action searched. Opening
  a page or finding in it carries no call fee. The variant is the tool the reply offered.
- `file_search`: a `file_search_call`.
- `container.1g` ... `container.64g`: a distinct container that code interpreter or hosted
  shell ran in, by the memory limit of the tool that made it (1g when it names none). A
  container a tool names by its id was made beforehand: the reply does not show its size,
  so it is 1g here and the container's session record (`billing.db.container_sessions`)
  says what it was made as. The upstream bills a container once per 20-minute session:
  the containers are kept (`ToolUse.containers`) so that one an earlier reply paid for
  within its session is not billed again (`remembered`).
- `image_generation.MODEL.QUALITY.SIZE`: an image the image generation tool made. The
  model, quality and size come from the tool in the reply. A size of `auto` is read from
  the image itself (its PNG, JPEG or WebP header). A quality of `auto` is billed as
  `high`, the dearest, and flagged `image_quality_assumed`.
Where the output does not show which of several tools offered made a call (both search
variants, two code interpreters of different memory, two image tools), its unit names each
(`web_search|web_search_preview`), is billed at the dearest and flagged
`tool_unit_assumed`: never the cheaper by guess.
Anything that is not the shape expected counts as absent: every value is any JSON.
"""

import base64
import binascii
import re
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

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
_TOOL_DATE = re.compile(r"_\d{4}_\d{2}_\d{2}$")
ALTERNATIVES = "|"  # `a|b`: a call billed as one of these, the dearest
_HEADER_BASE64_CHARS = 1024  # 768 bytes: past a JPEG's tables to its frame header


def request_units(tools: Any, billed_names: dict[str, str],
                  memories: Mapping[str, str] | None = None) -> tuple[tuple[str, bool], ...]:
    """The units a request's built-in tools may bill, as patterns (`*` where the upstream
    chooses), each with whether it bills per call (else once a reply: a container), one
    for each tool (two container tools may make two containers): what its worst case is
    priced at. `billed_names`: the name each other built-in tool's calls bill under
    (`billing.request_bounds.BUILT_IN_TOOLS`); `memories`: the unit of each container a
    tool names by its id, as it was made (else 1g)."""
    units: list[tuple[str, bool]] = []
    for tool in tools if isinstance(tools, list) else ():
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str):
            continue
        family = tool_family(kind)
        if family in (WEB_SEARCH, WEB_SEARCH_PREVIEW, FILE_SEARCH):
            units.append((family, True))
        elif family == "code_interpreter":
            container = tool.get("container")
            named = (memories or {}).get(container) if isinstance(container, str) else None
            units.append((named or container_unit(_memory(container)), False))
        elif family == "shell":
            environment = tool.get("environment")
            if kind == "local_shell":
                continue  # runs on the client
            named = _shell_container(environment)
            if named is not None:
                units.append(((memories or {}).get(named) or container_unit(DEFAULT_MEMORY), False))
            elif isinstance(environment, dict) and environment.get("type") == "container_auto":
                units.append((container_unit(_memory(environment)), False))
            elif not isinstance(environment, dict):
                units.append((container_unit(DEFAULT_MEMORY), False))  # no environment said: perhaps hosted
        elif family == IMAGE_TOOL:
            model, quality, size = _image_settings(tool)
            units.append((image_unit(model, quality or "*", size or "*"), True))
        elif family in billed_names:
            units.append((billed_names[family], True))
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
    containers: dict[str, str] = {}  # container id -> its unit
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
            container = item["container_id"][:128]
            containers.setdefault(container, offered.container(container, offered.interpreter_memories))
        elif kind == "shell_call" and (container := _shell_container(item.get("environment"))):
            containers.setdefault(container, offered.container(container, offered.shell_memories))
        elif kind == "image_generation_call" and item.get("status") != "failed":
            unit, assumed = offered.image_unit(item.get("result"))
            counts[unit] += 1
            if assumed:
                flags.add("image_quality_assumed")
    for unit in containers.values():
        counts[unit] += 1
    if any(ALTERNATIVES in unit for unit in counts):
        flags.add("tool_unit_assumed")
    return ToolUse(tuple(sorted(counts.items())), tuple(sorted(flags)), tuple(sorted(containers.items())))


Units = tuple[tuple[str, int], ...]  # (unit, count), sorted by unit
Containers = tuple[tuple[str, str], ...]  # (container id, its unit), sorted


def remembered(units: Units, containers: Containers, known: Mapping[str, tuple[str, bool]]) -> tuple[Units, Containers]:
    """`units` and `containers` with each container `known` (id -> (its unit as it was made,
    whether this reply starts its session)) billed at that unit, and only when its session
    starts here; a container not `known` stays as it is."""
    counts = Counter(dict(units))
    kept: list[tuple[str, str]] = []
    for container, unit in containers:
        if container not in known:
            kept.append((container, unit))
            continue
        counts[unit] -= 1
        made_as, starts = known[container]
        kept.append((container, made_as))
        if starts:
            counts[made_as] += 1
    return tuple(sorted((u, n) for u, n in counts.items() if n > 0)), tuple(sorted(kept))


def merged(*uses: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """The most of each unit any of `uses` counts (never their sum)."""
    most: Counter[str] = Counter()
    for use in uses:
        most |= Counter(dict(use))
    return tuple(sorted(most.items()))


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
    """The settings of the built-in tools a reply says it offered. Where the output does not
    show which of several tools made a call, the unit names each one it may be
    (`a|b`), billed at the dearest (`billing.pricing.PriceVersion.tool_price`)."""

    def __init__(self, tools: Any):
        variants: set[str] = set()
        self.named: set[str] = set()  # containers a tool names by id: made beforehand
        self.interpreter_memories: set[str] = set()  # of the containers code interpreters make
        self.shell_memories: set[str] = set()  # ...and hosted shells
        self._images: list[dict] = []
        for tool in tools if isinstance(tools, list) else ():
            kind = tool.get("type") if isinstance(tool, dict) else None
            family = tool_family(kind) if isinstance(kind, str) else None
            if family in (WEB_SEARCH, WEB_SEARCH_PREVIEW):
                variants.add(family)
            elif family == "code_interpreter":
                container = tool.get("container")
                if isinstance(container, str):
                    self.named.add(container[:128])
                else:
                    self.interpreter_memories.add(_memory(container))
            elif family == "shell" and kind != "local_shell":  # a local shell runs on the client
                environment = tool.get("environment")
                if (named := _shell_container(environment)) is not None:
                    self.named.add(named)
                elif not isinstance(environment, dict) or environment.get("type") == "container_auto":
                    self.shell_memories.add(_memory(environment))
            elif family == IMAGE_TOOL:
                self._images.append(tool)
        self.web_search = alternatives(variants or {WEB_SEARCH})

    def container(self, container: str, memories: set[str]) -> str:
        """The unit of a container a call ran in: one a tool named was made beforehand (its
        size is not shown: 1g, until its session's record says otherwise); one a tool made
        is of that tool's memory, or of any of those that may have made it."""
        if container in self.named or not memories:
            return container_unit(DEFAULT_MEMORY)
        return alternatives({container_unit(memory) for memory in memories})

    def image_unit(self, result: Any) -> tuple[str, bool]:
        """The unit of one generated image, and whether its quality was assumed."""
        units, assumed = set(), False
        for tool in self._images or [{}]:
            model, quality, size = _image_settings(tool)
            assumed = assumed or quality is None
            units.add(image_unit(model, quality or ASSUMED_QUALITY, size or image_size(result) or "1024x1024"))
        return alternatives(units), assumed


def alternatives(units: set[str]) -> str:
    """One unit naming each of `units` that a call may be billed as."""
    return ALTERNATIVES.join(sorted(units))


def _image_settings(tool: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    """An image tool's model (dated snapshots as their model), and its quality and size
    when it fixes them (None: `auto`, or not said)."""
    model = tool.get("model")
    model = _DATED.sub("", model.lower()) if isinstance(model, str) and _NAME.fullmatch(model.lower()) \
        else DEFAULT_IMAGE_MODEL
    quality = tool.get("quality") if tool.get("quality") in IMAGE_QUALITIES else None
    size = tool.get("size") if isinstance(tool.get("size"), str) and _SIZE.fullmatch(tool["size"]) else None
    return model, quality, size


def tool_family(kind: str) -> str:
    """A tool type without its version date: `web_search_preview_2025_03_11` is
    `web_search_preview`, `web_search_2025_08_26` is `web_search`, and so is any later
    dated name of a tool (`file_search_2026_01_15`)."""
    kind = _TOOL_DATE.sub("", kind)
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


def named_containers(tools: Any) -> list[str]:
    """The container ids a request's tools name, whatever the tool's type (a code
    interpreter's `container` string, a hosted shell's `container_reference`, and the same
    fields of any later tool): containers made beforehand, in order, once each."""
    named: list[str] = []
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        environment = tool.get("environment")
        for container in (tool.get("container"), environment.get("container_id") if isinstance(environment, dict)
                          else None):
            if isinstance(container, str) and container not in named:
                named.append(container)
    return named
