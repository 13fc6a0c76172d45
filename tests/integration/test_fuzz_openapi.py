"""schemathesis over the app's own ``/openapi.json``, on PostgreSQL: no generated request, valid
or not, gets a 5xx, and every session generated from ``SessionCreate`` is created.

Hypothesis drives the generation in a worker thread (it is synchronous); each request is sent
to the app on the test's own event loop, where its engine and pools live.
"""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from payhook.config import Settings
from tests.conftest import ADMIN_TOKEN, make_settings, new_merchant

EXAMPLES = 300  # requests per generation mode, spread over every operation


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Private URLs allowed: a generated webhook endpoint must not make the test resolve names.
    return make_settings(database_url, allow_private_urls=True,
                         web3_tokens="usdc:0x" + "ab" * 20 + ":6")


def sender(client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop,
           merchant_key: str) -> Callable[[Any], httpx.Response]:
    """Send a schemathesis case to the app with its operation's credentials, from any thread."""
    def send(case: Any) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url="http://payhook.test",
                                          headers=credentials(case.operation, merchant_key))
        body = json.dumps(kwargs["json"]).encode() if "json" in kwargs else kwargs.get("data")
        request = client.request(  # a dict is a form (the access page's reveal)
            kwargs["method"], kwargs["url"], params=kwargs.get("params"),
            headers=kwargs.get("headers"), data=body if isinstance(body, dict) else None,
            content=None if isinstance(body, dict) else body)
        return asyncio.run_coroutine_threadsafe(request, loop).result(timeout=30)
    return send


def credentials(operation: Any, merchant_key: str) -> dict[str, str]:
    security = operation.definition.raw.get("security") or [{}]
    if "merchant" in security[0]:
        return {"Authorization": f"Bearer {merchant_key}"}
    if "admin" in security[0]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return {}


def cases(document: dict[str, Any], mode: GenerationMode,
          wanted: Callable[[Any], bool] = lambda _: True) -> st.SearchStrategy[Any]:
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    return st.one_of([operation.as_strategy(generation_mode=mode)
                      for operation in operations if wanted(operation)])


def run(strategy: st.SearchStrategy[Any], examples: int, check: Callable[[Any], None]) -> None:
    @hypothesis_settings(max_examples=examples, deadline=None, database=None,
                         derandomize=True, phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def every(case: Any) -> None:
        check(case)

    every()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
async def test_no_generated_request_gets_a_5xx(client, mode):
    merchant = await new_merchant(client)
    document = (await client.get("/openapi.json")).json()
    send = sender(client, asyncio.get_running_loop(), merchant.key)
    failures: list[str] = []

    def check(case: Any) -> None:
        answer = send(case)
        if answer.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {answer.status_code}: "
                            f"{answer.text[:200]}")

    await asyncio.to_thread(run, cases(document, mode), EXAMPLES, check)
    assert failures == []


async def test_every_session_generated_from_the_schema_is_created(client):
    merchant = await new_merchant(client)
    document = (await client.get("/openapi.json")).json()
    send = sender(client, asyncio.get_running_loop(), merchant.key)
    refused: list[str] = []

    def check(case: Any) -> None:
        # JSON Schema counts 1.0 as an integer; the contract (and any typed client) does not.
        case.body = {name: int(value) if isinstance(value, float) else value
                     for name, value in case.body.items()}
        answer = send(case)
        if answer.status_code != 201:
            refused.append(f"{json.dumps(case.body)[:300]} -> {answer.text[:300]}")

    def create(operation: Any) -> bool:
        return bool(operation.method.upper() == "POST"
                    and operation.path == "/v1/checkout/sessions")

    await asyncio.to_thread(run, cases(document, GenerationMode.POSITIVE, create), 100, check)
    assert refused == [], "\n".join(refused)


async def test_session_create_describes_what_the_validators_check(client):
    document = (await client.get("/openapi.json")).json()
    schema = document["components"]["schemas"]["SessionCreate"]
    fields = schema["properties"]
    assert {"usd", "eur", "jpy", "eth", "usdc"} <= set(fields["currency"]["enum"])
    assert not {"xxx", "xts", "USD"} & set(fields["currency"]["enum"])
    assert (fields["amount"]["minimum"], fields["amount"]["maximum"]) == (1, 10**30)
    (fiat,) = schema["allOf"]
    assert "usd" in fiat["if"]["properties"]["currency"]["enum"]
    assert "eth" not in fiat["if"]["properties"]["currency"]["enum"]
    assert fiat["then"]["properties"]["amount"]["maximum"] == 99_999_999_999
    for name, length in (("success_url", 2048), ("cancel_url", 2048), ("customer_email", 254),
                         ("customer_name", 200)):
        text = fields[name]["anyOf"][0]
        assert text["maxLength"] == length and text["pattern"].startswith("^"), name
    assert fields["metadata"]["maxProperties"] == 20
    assert fields["metadata"]["propertyNames"] == {"maxLength": 40, "pattern": "^[^\\u0000]*$"}
    assert fields["metadata"]["additionalProperties"]["maxLength"] == 500
    assert (fields["expires_in"]["minimum"], fields["expires_in"]["maximum"]) == (60, 604_800)
    limit = next(parameter["schema"] for parameter
                 in document["paths"]["/v1/invoices"]["get"]["parameters"]
                 if parameter["name"] == "limit")
    assert (limit["minimum"], limit["maximum"]) == (1, 100) and "ASCII" in limit["description"]


def strings(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [found for item in schema for found in strings(item)]
    if not isinstance(schema, dict):
        return []
    own = [schema] if schema.get("type") == "string" else []
    return own + [found for value in schema.values() for found in strings(value)]


async def test_every_request_string_refuses_nul(client):
    document = (await client.get("/openapi.json")).json()
    bodies = [document["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
              for item in document["paths"].values() for operation in item.values()
              if (ref := operation.get("requestBody", {}).get("content", {})
                  .get("application/json", {}).get("schema", {})).get("$ref")]
    found = strings(bodies)
    assert found and all("pattern" in text for text in found)
