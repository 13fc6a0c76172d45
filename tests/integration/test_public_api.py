"""Public endpoints: session status, health, readiness, metrics and the OpenAPI document."""

from openapi_spec_validator import validate
from starlette.routing import Route

from payhook.app import routes

PUBLIC_FIELDS = {"session_id", "status", "payment_status", "payment_provider", "paid_at",
                 "amount", "currency", "created_at", "expires_at", "crypto_payment"}


async def test_status_shows_no_customer_or_merchant_data(client, merchant):
    created = (await client.post("/v1/checkout/sessions", headers=merchant.headers, json={
        "amount": 10, "currency": "usd", "customer_email": "private@customer.example",
        "customer_name": "Private Person", "metadata": {"secret": "internal"},
        "success_url": "https://shop.example/thanks"})).json()
    answer = await client.get(f"/session/{created['id']}/status")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == PUBLIC_FIELDS
    assert body["session_id"] == created["id"] and body["status"] == "created"
    for private in ("private@customer.example", "Private Person", "internal", merchant.id,
                    "shop.example"):
        assert private not in answer.text


async def test_status_of_an_unknown_session_is_404(client):
    answer = await client.get("/session/cs_unknown/status")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "resource_missing"


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


async def test_metrics_count_requests_by_route_and_status(client, merchant):
    await client.get("/v1/checkout/sessions", headers=merchant.headers)
    await client.get("/v1/checkout/sessions/cs_missing", headers=merchant.headers)
    answer = await client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert ('payhook_http_requests_total{method="GET",route="/v1/checkout/sessions",'
            'status="200"} 1.0') in text
    assert ('payhook_http_requests_total{method="GET",route="/v1/checkout/sessions/{id}",'
            'status="404"} 1.0') in text
    assert "payhook_http_request_duration_seconds_bucket" in text
    assert "cs_missing" not in text


async def test_every_answer_has_a_request_id(client):
    answer = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert answer.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert len(generated.headers["x-request-id"]) == 32


async def test_openapi_is_valid_and_describes_every_route(client):
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    described = {(method.upper(), path) for path, item in document["paths"].items()
                 for method in item}
    # The console's pages are for people, not API clients: HTML, behind a sign-in cookie.
    mounted = {(method, route.path) for route in routes if isinstance(route, Route)
               and not route.path.startswith("/console") for method in (route.methods or ())
               if method != "HEAD"}
    assert mounted - described == set()
    assert described - mounted == set()
