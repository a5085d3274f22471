"""``KeepAliveTransport`` against a real uvicorn server: answers as httpx's own transport gives
them, connections kept and reused, a connection the server closed, chunked answers, and the
errors ``ServiceClient`` sorts (refused, timeout)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from movierec.clients import ServiceTimeout, ServiceUnavailable
from movierec.clients.base import ServiceClient
from movierec.clients.keepalive import KeepAliveTransport


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request):
        body = await request.json()
        return JSONResponse({"got": body, "rid": request.headers.get("x-request-id"), "q": request.url.query}, status_code=201)

    @app.get("/chunked")
    async def chunked():
        async def parts():
            for i in range(3):
                yield f"part{i};".encode()
        return StreamingResponse(parts(), media_type="text/plain")

    @app.get("/missing")
    async def missing():
        return JSONResponse({"error": {"code": "not_found", "message": "nope"}}, status_code=404)

    @app.get("/slow")
    async def slow():
        await asyncio.sleep(1.0)
        return {"late": True}

    @app.get("/empty", status_code=204)
    async def empty():
        return None

    return app


@pytest.fixture
def server(serve):
    return serve(echo_app())


def run(coro):
    return asyncio.run(coro)


def test_answers_match_httpx_and_connections_are_reused(server):
    async def main():
        transport = KeepAliveTransport()
        async with httpx.AsyncClient(base_url=server.url, transport=transport, timeout=5) as lean, \
                httpx.AsyncClient(base_url=server.url, timeout=5) as reference:
            for client in (lean, reference):
                r = await client.post("/echo", params={"a": "1 2"}, json={"x": [1, 2], "t": "é"}, headers={"X-Request-ID": "r1"})
                assert r.status_code == 201 and r.json() == {"got": {"x": [1, 2], "t": "é"}, "rid": "r1", "q": "a=1+2"}
                assert (await client.get("/chunked")).text == "part0;part1;part2;"
                assert (await client.get("/empty")).status_code == 204
            results = await asyncio.gather(*[lean.post("/echo", json={"i": i}) for i in range(20)])
            assert [r.json()["got"]["i"] for r in results] == list(range(20))
            kept = sum(len(v) for v in transport._idle.values())
            for i in range(30):  # one after the other: one kept connection serves them all
                assert (await lean.post("/echo", json={"i": i})).status_code == 201
            assert sum(len(v) for v in transport._idle.values()) == kept
    run(main())


def test_a_connection_the_server_closed_is_replaced(server):
    async def main():
        transport = KeepAliveTransport()
        async with httpx.AsyncClient(base_url=server.url, transport=transport, timeout=5) as client:
            assert (await client.post("/echo", json={"i": 1})).status_code == 201
            for idle in transport._idle.values():  # as the server does when keep-alive expires
                for _reader, writer in idle:
                    writer.transport.abort()
            assert (await client.post("/echo", json={"i": 2})).json()["got"] == {"i": 2}
    run(main())


def test_a_request_the_server_dropped_on_a_kept_connection_is_sent_again():
    """The server answers one request per connection and closes on the next without answering
    (a keep-alive timeout racing the request): the transport sends it again on a new one."""
    async def main():
        answered = []

        async def handle(reader, writer):
            first = True
            while (await reader.readuntil(b"\r\n\r\n")) and first:
                first = False
                answered.append(1)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", transport=KeepAliveTransport(), timeout=5) as client:
            assert [(await client.get("/x")).status_code for _ in range(3)] == [200, 200, 200]
        assert len(answered) == 3
    run(main())


def test_service_client_errors_through_the_lean_transport(server, down_url):
    async def main():
        ok = ServiceClient(server.url, timeout=0.3, transport=KeepAliveTransport())
        with pytest.raises(ServiceTimeout):
            await ok.request("GET", "/slow")
        missing = await asyncio.gather(ok.request("GET", "/missing"), return_exceptions=True)
        assert missing[0].status == 404 and missing[0].code == "not_found"
        assert (await ok.request("POST", "/echo", json={"after": "timeout"})).json()["got"] == {"after": "timeout"}
        down = ServiceClient(down_url, timeout=0.5, transport=KeepAliveTransport())
        with pytest.raises(ServiceUnavailable):
            await down.request("GET", "/anything")
        for client in (ok, down):
            await client.aclose()
    run(main())
