"""The floor: a bare aiohttp pass-through, with no authentication and no accounting. It
forwards POST /v1/responses to the upstream and relays the reply (streamed chunk by chunk),
exactly the transport work the proxy also does.

    python bench/passthrough.py --port 9200 --upstream http://127.0.0.1:9100/v1
"""

import argparse

import aiohttp
from aiohttp import web

HTTP = web.AppKey("http", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    async with request.app[HTTP].post(request.app[UPSTREAM] + "/responses", data=body,
                                      headers={"Content-Type": "application/json"}) as upstream:
        if upstream.content_type != "text/event-stream":
            return web.Response(status=upstream.status, body=await upstream.read(),
                                content_type=upstream.content_type)
        response = web.StreamResponse(status=upstream.status, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


def create_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream

    async def session(app):
        app[HTTP] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app[HTTP].close()

    app.cleanup_ctx.append(session)
    app.router.add_post("/v1/responses", forward)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(create_app(args.upstream), host="127.0.0.1", port=args.port, print=None, access_log=None,
                loop=loop)
