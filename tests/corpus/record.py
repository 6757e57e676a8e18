"""A recording server for the request corpus (see README.md beside this file).

It sits in front of a running `billing-proxy simulate-upstream`, forwards every request to
it unchanged (streamed replies are passed through chunk by chunk) and saves each request
that carries a JSON body as `OUT/<client>/<case>.json`:

    python -m tests.corpus.record --port 19010 --upstream http://127.0.0.1:19001 \
        --out tests/corpus --client openai-python

Point the client at `http://127.0.0.1:19010/v1` with any API key. Case names come from
the `x-corpus-case` request header (not forwarded); without one, from the name last set
with `POST /_corpus/case {"case": "NAME"}` (for clients whose headers are hard to set per
call), numbered `NAME`, `NAME-2`, `NAME-3`, ...; without either, `NNN-<path>`.

Only `content-type`, `user-agent` and the client's identifying headers (`x-stainless-*`,
`originator`, `openai-beta`) are kept; never `authorization` or any other credential.
"""

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

CASE_HEADER = "x-corpus-case"
KEPT_HEADERS = ("content-type", "user-agent", "originator", "openai-beta")
KEPT_PREFIXES = ("x-stainless-",)
HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "accept-encoding",
              CASE_HEADER}
REPLY_DROPPED = {"content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive"}
SECRET = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,})")

STATE = web.AppKey("corpus_state", dict)


def kept_headers(headers) -> dict[str, str]:
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in KEPT_HEADERS or lower.startswith(KEPT_PREFIXES):
            kept[lower] = value
    return dict(sorted(kept.items()))


def scrub(value: Any) -> Any:
    """Replaces anything shaped like an API key in the body; nothing else is changed."""
    if isinstance(value, str):
        return SECRET.sub("sk-REDACTED", value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    return value


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "case"


def case_name(state: dict, request: web.Request) -> str:
    state["counter"] += 1
    named = request.headers.get(CASE_HEADER)
    if not named and state["case"]:
        state["case_count"] += 1
        named = state["case"] if state["case_count"] == 1 else f"{state['case']}-{state['case_count']}"
    if not named:
        named = f"{state['counter']:03d}-{slug(request.path)}"
    name, n = slug(named), 1
    while (state["dir"] / f"{name}.json").exists() or name in state["written"]:
        n += 1
        name = f"{slug(named)}-{n}"
    state["written"].add(name)
    return name


def save(state: dict, request: web.Request, raw: bytes) -> str | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    name = case_name(state, request)
    record = {"client": state["client"], "case": name, "method": request.method, "path": request.path,
              "headers": kept_headers(request.headers), "body": scrub(body)}
    state["dir"].mkdir(parents=True, exist_ok=True)
    path = state["dir"] / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded {path}", file=sys.stderr, flush=True)
    return name


async def set_case(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state["case"] = (await request.json()).get("case") or None
    state["case_count"] = 0
    return web.json_response({"case": state["case"]})


async def forward(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw = await request.read()
    if raw and request.method in ("POST", "PUT", "PATCH"):
        save(state, request, raw)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    url = state["upstream"] + request.path_qs
    session: aiohttp.ClientSession = state["session"]
    async with session.request(request.method, url, headers=headers, data=raw or None,
                               auto_decompress=False) as upstream:
        reply = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers={
            k: v for k, v in upstream.headers.items() if k.lower() not in REPLY_DROPPED})
        if "content-encoding" in upstream.headers:
            reply.headers["content-encoding"] = upstream.headers["content-encoding"]
        await reply.prepare(request)
        async for chunk in upstream.content.iter_any():
            await reply.write(chunk)
        await reply.write_eof()
        return reply


def create_recorder(upstream: str, out: Path, client: str) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    base = upstream.rstrip("/")
    if base.endswith("/v1"):  # requests already carry /v1
        base = base[:-3]
    app[STATE] = {"upstream": base, "dir": out / client, "client": client, "counter": 0, "case": None,
                  "case_count": 0, "written": set(), "session": None}

    async def open_session(app: web.Application) -> None:
        app[STATE]["session"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def close_session(app: web.Application) -> None:
        await app[STATE]["session"].close()

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_post("/_corpus/case", set_case)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the simulated upstream, e.g. http://127.0.0.1:19001")
    parser.add_argument("--out", type=Path, required=True, help="the corpus directory, e.g. tests/corpus")
    parser.add_argument("--client", required=True, help="subdirectory naming the client library")
    args = parser.parse_args(argv)
    web.run_app(create_recorder(args.upstream, args.out, args.client), host=args.host, port=args.port,
                print=lambda *_: print(f"recording {args.client} on http://{args.host}:{args.port}/v1",
                                       file=sys.stderr, flush=True))


if __name__ == "__main__":
    main()
