"""The simulated upstream (`billing-proxy simulate-upstream`): a local stand-in for an OpenAI / BytePlus ModelArk
Responses API, speaking the real wire format (JSON, and SSE with the real event sequence
and `sequence_number`s), modelled on the openai SDK's `types/responses` and the Ark SDK.

Plausible, deterministic behaviour:
- tokens are counted as ceil(UTF-8 bytes / 4) per text piece;
- BytePlus `caching: {type: enabled, prefix: true}` stores the input as a prefix cache
  when it has at least 256 tokens (and is refused with `max_output_tokens`, as upstream);
  `caching: {type: enabled}` caches the response's whole context for the session; a
  stored BytePlus response says when it expires (`expire_at`, 3 days by default) and is
  billed cache storage per started hour until then;
- `previous_response_id` and `conversation` continue stored context: it counts as input,
  and as cached input when that response was cached;
- `thinking: {type: enabled}` (the default for seed-* models) or `reasoning` (o-series,
  gpt-5) produces reasoning tokens; `max_output_tokens` ends the reply as `incomplete`;
- `service_tier` is served as asked (`fast` as `priority`, `auto` as `default`) and
  reported in the reply;
- built-in tools in `tools` (web search and its preview, file search, code interpreter,
  hosted shell, image generation) are called (`x-sim-tool-calls` times each, default 1):
  `*_call` output items, and for BytePlus models `usage.tool_usage` as well
  (`proxy.simulator.tools`); what they bill is priced at the simulator's own list prices
  (`proxy.simulator.list_prices`), never the proxy's catalog;
- `background: true` answers `queued` at once and finishes after `x-sim-background-ms`
  (default 300); it can be read, cancelled (billed what it used: its input) and, when it
  was streamed, resumed with `GET /responses/{id}?stream=true&starting_after=N`.

Test knobs, as request headers (the proxy forwards them): `x-sim-output-tokens` (reply
length), `x-sim-delay-ms` (pause before each SSE event, or before a JSON reply),
`x-sim-extra-input-tokens` (tokens a file in the input adds), `x-sim-web-actions` (the
actions of web search calls in turn: search, open_page, find_in_page), `x-sim-image-quality`
(the quality an image of quality `auto` is made in), `x-sim-status` (answer with that error status instead), `x-sim-reply-status` (a JSON
reply's success status, 200 by default), `x-sim-cut-after: N` (drop the
connection after N stream events), `x-sim-error-after: N` (send an error event after N
stream events and end there; a BytePlus model sends `data: {"error": ...}`),
`x-sim-stall-after: N` (go quiet after N stream events, never ending),
`x-sim-hold-after-end-ms` (keep a stream open that long after its last event), `x-sim-malformed: 1`
(answer 200 with a body that is not JSON), `x-sim-framing: data-only` (SSE without
`event:` lines), `x-sim-service-tier` (the tier that serves, whatever was asked).
`GET /_sim/billed` lists the ids of the replies it billed (generated, whether or not the
client read them) and `GET /_sim/billed/usage` what each bills; `POST /_sim/forget/{id}`
makes it forget a response (finishing it first, as retention only drops ended ones).
"""

from proxy.simulator.app import create_simulator
from proxy.simulator.wire import SIM_STATE, count_tokens

__all__ = ["SIM_STATE", "create_simulator", "count_tokens"]
