import os
import httpx
from typing import Optional
from pydantic import BaseModel, Field
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langchain_core.tools import tool

REC = os.environ.get("RECORDER", "http://127.0.0.1:19012")
def case(name):
    httpx.post(REC + "/_corpus/case", json={"case": name})

@tool
def get_weather(city: str, unit: Optional[str] = None) -> str:
    """Get the current weather in a city."""
    return "sunny"

class Person(BaseModel):
    """A person mentioned in the text."""
    name: str = Field(description="Full name")
    email: Optional[str] = Field(default=None, description="Email, if known")
    age: Optional[int] = None

common = dict(base_url=REC + "/v1", api_key="sk-anything-not-a-real-key", max_retries=0)
chat = ChatOpenAI(model="gpt-4o-mini", temperature=0, **common)
resp = ChatOpenAI(model="gpt-4.1-mini", use_responses_api=True, **common)

def attempt(name, fn):
    case(name)
    try:
        fn()
    except Exception as e:
        print(name, "client error (expected):", type(e).__name__, str(e)[:150])

attempt("chat-bind-tools", lambda: chat.bind_tools([get_weather]).invoke("What's the weather in Paris?"))
attempt("chat-bind-tools-strict", lambda: chat.bind_tools([get_weather], strict=True, tool_choice="get_weather").invoke("Weather in Oslo?"))
attempt("chat-structured-output", lambda: chat.with_structured_output(Person).invoke("Ada Lovelace, 36, ada@example.com"))
attempt("chat-structured-output-json-schema-strict", lambda: chat.with_structured_output(Person, method="json_schema", strict=True).invoke("Alan Turing, 41"))
attempt("chat-stream", lambda: [c for c in chat.stream("Tell me a joke")])
attempt("responses-bind-tools", lambda: resp.bind_tools([get_weather]).invoke("What's the weather in Paris?"))
attempt("responses-structured-output", lambda: resp.with_structured_output(Person).invoke("Grace Hopper, 85"))
attempt("responses-stream", lambda: [c for c in resp.stream([("system", "Be brief."), ("human", "Hi there")])])
attempt("embeddings", lambda: OpenAIEmbeddings(model="text-embedding-3-small", check_embedding_ctx_length=False, **common).embed_documents(["alpha", "beta"]))
print("ok")
