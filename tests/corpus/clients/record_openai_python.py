import os
from typing import Optional
from openai import OpenAI
from pydantic import BaseModel

client = OpenAI(base_url=os.environ.get("RECORDER", "http://127.0.0.1:19010") + "/v1", api_key="sk-anything-not-a-real-key", max_retries=0)

def case(name):
    return {"x-corpus-case": name}

def attempt(fn):
    try:
        return fn()
    except Exception as e:
        print("client error (expected with the simulator):", type(e).__name__, str(e)[:200])

r = client.responses.create(model="gpt-4o-mini", input="Write a one-sentence bedtime story about a unicorn.",
                            extra_headers=case("responses-plain"))
print(r.usage)

stream = client.responses.create(model="gpt-4o-mini", instructions="You are terse.",
                                 input=[{"role": "user", "content": "Say hello in three languages."}],
                                 stream=True, extra_headers=case("responses-stream"))
for _ in stream: pass

schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "email": {"type": ["string", "null"]},
        "age": {"type": ["integer", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "email", "age", "tags"],
    "additionalProperties": False,
}
attempt(lambda: client.responses.create(
    model="gpt-4.1-mini", input="Extract the contact: Jane Doe, no email, 41 years old.",
    text={"format": {"type": "json_schema", "name": "contact", "schema": schema, "strict": True}},
    extra_headers=case("responses-json-schema-nullable")))

class Contact(BaseModel):
    name: str
    email: Optional[str]
    phone: str | None
    age: int | None

attempt(lambda: client.responses.parse(model="gpt-4o-2024-08-06", input="Jane Doe, 41, phone 555-0100.",
                                       text_format=Contact, extra_headers=case("responses-parse-pydantic-optional")))

tools = [{
    "type": "function", "name": "get_weather", "description": "Get the current weather in a city.",
    "strict": True,
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["c", "f", None]}},
        "required": ["city", "unit"], "additionalProperties": False},
}]
client.responses.create(model="gpt-5-mini", input="What's the weather in Paris?", tools=tools,
                        tool_choice="auto", reasoning={"effort": "low"}, extra_headers=case("responses-strict-function-tool"))

client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "system", "content": "You are a helpful assistant."},
              {"role": "user", "content": "What's the weather in Boston? Answer as JSON."}],
    tools=[{"type": "function", "function": {
        "name": "get_weather", "description": "Weather by city", "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False}}}],
    response_format={"type": "json_object"}, extra_headers=case("chat-tools-json-object"))

attempt(lambda: client.chat.completions.parse(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Jane Doe, 41."}], response_format=Contact,
    extra_headers=case("chat-parse-json-schema")))

s = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Count to five."}],
                                   stream=True, stream_options={"include_usage": True},
                                   extra_headers=case("chat-stream-include-usage"))
for _ in s: pass

client.embeddings.create(model="text-embedding-3-small", input=["The food was delicious.", "The waiter was kind."],
                         extra_headers=case("embeddings-base64-default"))
client.embeddings.create(model="text-embedding-3-large", input="hello world", encoding_format="float",
                         dimensions=256, extra_headers=case("embeddings-float-dimensions"))

first = client.responses.create(model="gpt-4o-mini", input="My name is Ada. Remember it.",
                                extra_headers=case("responses-previous-first"))
client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, input="What is my name?",
                        extra_headers=case("responses-previous-response-id"))

seed = client.responses.create(
    model="seed-1-6-250915", input=[{"role": "user", "content": "Hello!"}],
    extra_body={"caching": {"type": "enabled"}, "thinking": {"type": "disabled"}},
    extra_headers=case("responses-seed-extra-body"))
client.responses.create(
    model="seed-1-6-250915", previous_response_id=seed.id,
    input=[{"role": "user", "content": "请用5个要点简要概括这个故事。"}],
    extra_body={"caching": {"type": "enabled"}, "thinking": {"type": "disabled"}}, stream=True,
    extra_headers=case("responses-seed-previous-stream"))
print("ok")

conv = client.conversations.create(items=[{"type": "message", "role": "user", "content": "We are planning a trip to Kyoto."}],
                                   metadata={"topic": "travel"}, extra_headers=case("conversations-create"))
client.responses.create(model="gpt-4.1-mini", conversation=conv.id, input="Suggest three temples to visit.",
                        extra_headers=case("responses-conversation"))
