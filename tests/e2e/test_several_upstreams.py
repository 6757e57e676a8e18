"""Models routed to several upstreams, each with its own key and rules; a continuation, a
read or a delete goes back to the upstream that made the response."""

from dataclasses import replace

import openai
import pytest

from proxy.app import create_app
from proxy.config.routing import Upstream
from proxy.simulator import SIM_STATE, create_simulator
from tests.conftest import UPSTREAM_KEY

ARK_KEY = "ark-" + "b" * 24


async def test_models_go_to_their_upstream_with_its_own_key(aiohttp_server, simulator, engine, database_url,
                                                            proxy_settings, tenant_key):
    ark_app = create_simulator(api_key=ARK_KEY)
    ark = await aiohttp_server(ark_app)
    byteplus = Upstream("byteplus", str(ark.make_url("/v1")), ARK_KEY, models=("seed-*",),
                        refuse_prefix_with_max_output_tokens=False)  # this one lets the upstream decide
    app = create_app(replace(proxy_settings, upstreams=(byteplus,)), database_url)
    server = await aiohttp_server(app)
    openai_seen, ark_seen = simulator.state.requests, ark_app[SIM_STATE].requests

    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=tenant_key.secret,
                                  max_retries=0) as client:
        await client.responses.create(model="gpt-4o-mini", input="to the default upstream")
        seed = await client.responses.create(model="seed-1-6-250915", input="to BytePlus",
                                             extra_body={"caching": {"type": "enabled"}})
        follow = await client.responses.create(model="seed-1-6-250915", input="and again",
                                               previous_response_id=seed.id,
                                               extra_body={"caching": {"type": "enabled"}})
        assert follow.usage.input_tokens_details.cached_tokens > 0  # the upstream that holds the cache
        # only BytePlus knows this id: the read went there too
        assert (await client.responses.retrieve(seed.id)).id == seed.id
        assert (len(openai_seen), len(ark_seen)) == (1, 2)  # (the simulators log creations only)

        # the default upstream refuses prefix caching with an output limit itself...
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(model="gpt-4o-mini", input="x", max_output_tokens=5,
                                          extra_body={"caching": {"type": "enabled", "prefix": True}})
        assert refused.value.body["param"] == "max_output_tokens" and len(openai_seen) == 1
        # ...while BytePlus, configured not to, gets the request and answers for itself
        with pytest.raises(openai.BadRequestError):
            await client.responses.create(model="seed-1-6-250915", input="x", max_output_tokens=5,
                                          extra_body={"caching": {"type": "enabled", "prefix": True}})
        assert len(ark_seen) == 3

    assert {r["authorization"] for r in openai_seen} == {f"Bearer {UPSTREAM_KEY}"}
    assert {r["authorization"] for r in ark_seen} == {f"Bearer {ARK_KEY}"}
