import asyncio, os, tempfile
os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
import httpx
from typing import Literal
from openai import AsyncOpenAI
from agents import (Agent, Runner, function_tool, set_tracing_disabled, set_default_openai_client,
                    set_default_openai_api, SQLiteSession, OpenAIChatCompletionsModel, ModelSettings)
from pydantic import BaseModel

set_tracing_disabled(True)
REC = os.environ.get("RECORDER", "http://127.0.0.1:19011")
client = AsyncOpenAI(base_url=REC + "/v1", api_key="sk-anything-not-a-real-key", max_retries=0)
set_default_openai_client(client, use_for_tracing=False)

def case(name):
    httpx.post(REC + "/_corpus/case", json={"case": name})

@function_tool
def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Get the current weather for a city.

    Args:
        city: The city to look up.
        unit: Temperature unit.
    """
    return f"Sunny in {city}"

@function_tool
def lookup_record(type: str, id: int, note: str | None = None) -> str:
    """Look up a record in the CRM.

    Args:
        type: The kind of record (contact, deal, company).
        id: The record's numeric id.
        note: An optional note.
    """
    return f"{type} {id}"

class Answer(BaseModel):
    city: str
    summary: str
    temperature: float | None

async def main():
    agent = Agent(name="Assistant", instructions="You help with weather and CRM lookups.",
                  model="gpt-4.1-mini", tools=[get_weather, lookup_record])
    case("agent-function-tools")
    r = await Runner.run(agent, "What's the weather in Tokyo, and look up contact 42?")
    print(r.final_output)

    session = SQLiteSession("conv-1", os.path.join(tempfile.mkdtemp(), "s.db"))
    case("agent-session")
    await Runner.run(agent, "My favourite city is Lisbon.", session=session)
    await Runner.run(agent, "What's the weather in my favourite city?", session=session)

    typed = Agent(name="Typed", instructions="Answer with structured data.", model="gpt-4.1-mini",
                  output_type=Answer, model_settings=ModelSettings(temperature=0.2, max_tokens=400))
    case("agent-output-type")
    try:
        await Runner.run(typed, "Weather summary for Oslo.")
    except Exception as e:
        print("expected:", type(e).__name__)

    chat_agent = Agent(name="ChatAssistant", instructions="Be brief.", tools=[get_weather, lookup_record],
                       model=OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client))
    case("agent-chat-completions-tools")
    await Runner.run(chat_agent, "Weather in Rome?")

    streamed = Agent(name="Streamer", instructions="Be brief.", model="gpt-4.1-mini", tools=[lookup_record])
    case("agent-run-streamed")
    result = Runner.run_streamed(streamed, "Find deal 7.")
    async for _ in result.stream_events():
        pass



# ---- a session that already holds a tool call and its output
async def session_with_tool_history():
    agent = Agent(name="Assistant", instructions="You help with CRM lookups.", model="gpt-4.1-mini",
                  tools=[lookup_record])
    session = SQLiteSession("conv-tools", os.path.join(tempfile.mkdtemp(), "s.db"))
    # What an earlier turn in which the model called the tool leaves in the session.
    await session.add_items([
        {"role": "user", "content": "Look up contact 42."},
        {"type": "function_call", "call_id": "call_abc123", "name": "lookup_record",
         "arguments": '{"type": "contact", "id": 42}', "id": "fc_1", "status": "completed"},
        {"type": "function_call_output", "call_id": "call_abc123", "output": "contact 42: Ada Lovelace"},
        {"role": "assistant", "type": "message", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Contact 42 is Ada Lovelace.", "annotations": []}]},
    ])
    httpx.post(REC + "/_corpus/case", json={"case": "agent-session-tool-history"})
    await Runner.run(agent, "And what kind of record was that?", session=session)


async def everything():
    await main()
    await session_with_tool_history()


asyncio.run(everything())
print("ok")
