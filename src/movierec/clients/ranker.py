"""Clients of the ranker: one replica (``RankerClient``) or several (``RankerPool``, which spreads
calls round-robin and moves on to the next replica when one is unavailable)."""

from __future__ import annotations

import itertools

from movierec.clients.base import JSON_CONTENT, RequestIdSource, ServiceClient
from movierec.clients.errors import ServiceUnavailable
from movierec.contracts.ranker import AddItemRequest, AddItemResponse, RankerInfo, TopNRequest, TopNResponse


class RankerClient(ServiceClient):
    service = "ranker"

    async def top_n(self, request: TopNRequest) -> TopNResponse:
        response = await self.request("POST", "/v1/topn", content=request.model_dump_json(exclude_none=True), headers=JSON_CONTENT)
        return TopNResponse.model_validate_json(response.content)  # one pass in pydantic-core, no dict tree

    async def add_item(self, request: AddItemRequest) -> AddItemResponse:
        response = await self.request("POST", "/v1/items", json=request.model_dump(mode="json", exclude_none=True))
        return AddItemResponse.model_validate(response.json())

    async def reload(self) -> RankerInfo:
        return RankerInfo.model_validate((await self.request("POST", "/v1/reload")).json())

    async def info(self) -> RankerInfo:
        return RankerInfo.model_validate((await self.request("GET", "/v1/info")).json())


class RankerPool:
    """Several ranker replicas behind one interface."""

    service = "ranker"

    def __init__(self, urls: list[str], *, timeout: float, request_id: RequestIdSource | None = None, transports: dict | None = None):
        if not urls:
            raise ValueError("at least one ranker URL is needed")
        transports = transports or {}
        self.replicas = [RankerClient(u, timeout=timeout, request_id=request_id, transport=transports.get(u)) for u in urls]
        self._next = itertools.cycle(range(len(self.replicas)))

    async def top_n(self, request: TopNRequest) -> TopNResponse:
        """From the next replica in turn; on ``ServiceUnavailable`` the others are tried in order."""
        start = next(self._next)
        last: ServiceUnavailable | None = None
        for i in range(len(self.replicas)):
            try:
                return await self.replicas[(start + i) % len(self.replicas)].top_n(request)
            except ServiceUnavailable as exc:
                last = exc
        raise last  # type: ignore[misc]

    async def add_item(self, request: AddItemRequest) -> list[AddItemResponse | ServiceUnavailable]:
        """Every replica must serve the new movie: sent to all; unavailable ones are reported."""
        results: list[AddItemResponse | ServiceUnavailable] = []
        for replica in self.replicas:
            try:
                results.append(await replica.add_item(request))
            except ServiceUnavailable as exc:
                results.append(exc)
        return results

    async def ready(self) -> str | None:
        """None when at least one replica is ready."""
        problems = [p for p in [await r.ready() for r in self.replicas] if p]
        return None if len(problems) < len(self.replicas) else "; ".join(problems)

    async def aclose(self) -> None:
        for r in self.replicas:
            await r.aclose()
