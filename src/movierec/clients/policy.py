"""Client of the policy service (``POST /v1/rank``)."""

from __future__ import annotations

from movierec.clients.base import ServiceClient
from movierec.contracts.policy import RankRequest, RankResponse


class PolicyClient(ServiceClient):
    service = "policy"

    async def rank(self, request: RankRequest) -> RankResponse:
        response = await self.request("POST", "/v1/rank", json=request.model_dump(mode="json", exclude_none=True))
        return RankResponse.model_validate(response.json())
