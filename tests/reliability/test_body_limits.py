"""Every service's app bounds request bodies: 413 over the size limit (declared or streamed),
408 for a client that stalls while sending its body; both in the services' error format."""

import asyncio

import httpx
from pydantic import BaseModel

from movierec_service import create_service_app


class Body(BaseModel):
    ids: list[int]


def _app(received: list):
    app = create_service_app("limits-test", max_body_bytes=1000, body_timeout_s=0.5)

    @app.post("/v1/things")
    async def things(body: Body):
        received.append(body)
        return {"n": len(body.ids)}

    return app


def _post(app, **kwargs) -> httpx.Response:
    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.post("/v1/things", **kwargs)

    return asyncio.run(run())


def test_small_body_passes_and_large_ones_get_413():
    received = []
    app = _app(received)
    assert _post(app, json={"ids": [1, 2]}).json() == {"n": 2}
    declared = _post(app, content=b'{"ids": [' + b"1," * 2000 + b"1]}", headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "too large" in declared.text.lower()

    async def chunks():  # no Content-Length: the limit applies to what streams in
        yield b'{"ids": ['
        for _ in range(100):
            yield b"1," * 20
        yield b"1]}"

    streamed = _post(app, content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert len(received) == 1  # neither large body reached the route


def test_stalled_client_gets_408():
    received = []

    async def slow():
        yield b'{"ids": ['
        await asyncio.sleep(2.0)
        yield b"1]}"

    response = _post(_app(received), content=slow(), headers={"content-type": "application/json"})
    assert response.status_code == 408
    assert response.json()["error"]["code"] == "body_timeout" and received == []


def test_unknown_route_uses_the_error_format():
    response = _post(create_service_app("limits-test"), json={})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_openapi_documents_the_error_body_for_422():
    schema = _app([]).openapi()
    documented = schema["components"]["schemas"]["HTTPValidationError"]
    assert documented["required"] == ["error"] and "code" in documented["properties"]["error"]["properties"]
    response = _post(_app([]), json={"ids": "nope"})
    assert response.status_code == 422 and set(response.json()) == {"error"}
