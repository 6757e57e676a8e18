"""The simulated upstream's built-in tools: the output items a reply carries for them (the
openai SDK's `types/responses/response_output_item.py`) and what it bills for them, in the
names of `proxy.simulator.list_prices` (never read from the proxy's billing code).

- web search (`web_search`, `web_search_preview` and their dated names): a `web_search_call`
  per call, each an action of `x-sim-web-actions` in turn (default `search`); a search bills
  under the tool's variant, opening a page or finding in it bills nothing;
- file search: a `file_search_call` per call, each billed;
- code interpreter: `code_interpreter_call`s in one container, of the tool's `memory_limit`
  (1g when it names none; a container named by its id keeps the memory it was made with),
  each tool its own container; hosted shell (`shell` with a `container_auto` or
  `container_reference` environment): `shell_call`s in one container. A container bills once
  per 20-minute session: a reply that names a container (its id in the tool) billed less than
  20 minutes before bills nothing for it;
- image generation: an `image_generation_call` whose `result` is a PNG of the tool's size
  (1024x1024 for `auto`), billed by the tool's model, quality (`x-sim-image-quality` for
  `auto`, default medium) and size.
At most `max_tool_calls` calls in all, as the real API honours it.
"""

import base64
import struct
import time
import zlib
from typing import Any

from aiohttp import web

from proxy.simulator.wire import header_int

CONTAINER_SESSION_SECONDS = 20 * 60
MEMORY = ("1g", "4g", "16g", "64g")


def _png(width: int, height: int) -> str:
    """A PNG's signature and header chunk: enough for a reader of sizes, small to send."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + header
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return base64.b64encode(data).decode()


def _family(kind: Any) -> str | None:
    if not isinstance(kind, str):
        return None
    for family in ("web_search_preview", "web_search"):
        if kind == family or kind.startswith(family + "_2"):
            return family
    return kind if kind in ("file_search", "code_interpreter", "shell", "image_generation") else None


def _memory(config: Any) -> str:
    memory = config.get("memory_limit") if isinstance(config, dict) else None
    return memory if memory in MEMORY else "1g"


class ToolRun:
    """The tool calls of one reply: `items` to put in its output, `billed` units to bill."""

    def __init__(self, containers: dict[str, tuple[float, str]], request: web.Request, response_id: str, limit: Any):
        self.items: list[dict[str, Any]] = []
        self.billed: dict[str, int] = {}
        self._containers, self._request, self._id = containers, request, response_id
        self._made = 0  # containers this reply's tools made: each tool its own
        self._per_tool = header_int(request, "x-sim-tool-calls", 1)
        self._limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
        actions = request.headers.get("x-sim-web-actions", "search")
        self._actions = [a.strip() for a in actions.split(",") if a.strip()] or ["search"]

    def _room(self) -> int:
        return self._per_tool if self._limit is None else max(0, min(self._per_tool, self._limit - len(self.items)))

    def _bill(self, unit: str, count: int = 1) -> None:
        self.billed[unit] = self.billed.get(unit, 0) + count

    def _item(self, kind: str, **fields: Any) -> None:
        self.items.append({"id": f"{kind[:2]}_{self._id[5:17]}{len(self.items)}", "type": kind,
                           "status": "completed", **fields})

    def run(self, tool: dict) -> None:
        family = _family(tool.get("type"))
        if family in ("web_search", "web_search_preview"):
            for n in range(self._room()):
                action = self._actions[n % len(self._actions)]
                self._item("web_search_call", action={"type": action, "query": f"query {n}", "sources": []}
                           if action == "search" else {"type": action, "url": "https://example.com/"})
                if action == "search":
                    self._bill(family)
        elif family == "file_search":
            for n in range(self._room()):
                self._item("file_search_call", queries=[f"query {n}"], results=None)
                self._bill("file_search")
        elif family == "code_interpreter":
            config = tool.get("container")
            container = config if isinstance(config, str) else f"cntr_{self._id[5:21]}ci{self._made}"
            made = self._room()
            for _ in range(made):
                self._item("code_interpreter_call", container_id=container, code="print(1)", outputs=None)
            if made:
                self._container(container, None if isinstance(config, str) else _memory(config))
        elif family == "shell":
            environment = tool.get("environment")
            if not isinstance(environment, dict) or environment.get("type") not in ("container_auto",
                                                                                    "container_reference"):
                return  # a local shell runs on the client: nothing runs, nothing bills here
            container = environment.get("container_id") if environment["type"] == "container_reference" \
                else f"cntr_{self._id[5:21]}sh{self._made}"
            made = self._room()
            for _ in range(made):
                self._item("shell_call", call_id=f"call_{len(self.items)}",
                           action={"commands": ["ls"], "max_output_length": None, "timeout_ms": None},
                           environment={"type": "container_reference", "container_id": str(container)})
            if made:
                self._container(str(container), _memory(environment) if environment["type"] == "container_auto"
                                else None)
        elif family == "image_generation":
            size = tool.get("size") if tool.get("size") in ("1024x1024", "1024x1536", "1536x1024") else "1024x1024"
            quality = tool.get("quality")
            if quality not in ("low", "medium", "high"):
                quality = self._request.headers.get("x-sim-image-quality", "medium")
            model = tool.get("model") if isinstance(tool.get("model"), str) else "gpt-image-1"
            width, height = (int(side) for side in size.split("x"))
            for _ in range(self._room()):
                self._item("image_generation_call", result=_png(width, height))
                self._bill(f"image.{model}.{quality}.{size}")

    def _container(self, container: str, memory: str | None) -> None:
        """Bill a container once per session of 20 minutes from when it was billed, at the
        memory it was made with (`None`: named by its id, made earlier; 1g if never seen)."""
        self._made += 1
        now = time.time()
        started, made_with = self._containers.get(container, (None, memory or "1g"))
        if started is not None and now < started + CONTAINER_SESSION_SECONDS:
            return
        self._containers[container] = (now, made_with)
        self._bill(f"container.{made_with}")


def tool_calls(body: dict[str, Any], request: web.Request, response_id: str,
               containers: dict[str, tuple[float, str]]) -> tuple[list[dict], dict[str, int]]:
    """Output items for the built-in tools the request offers, and the units they bill."""
    run = ToolRun(containers, request, response_id, body.get("max_tool_calls"))
    for tool in body.get("tools") or ():
        if isinstance(tool, dict):
            run.run(tool)
    return run.items, run.billed
