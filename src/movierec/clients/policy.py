"""Client of the policy service (``POST /v1/rank``)."""

from __future__ import annotations

from movierec.clients.base import JSON_CONTENT, ServiceClient
from movierec.contracts.policy import RankRequest, RankResponse


class PolicyClient(ServiceClient):
    service = "policy"

    async def rank(self, request: RankRequest) -> RankResponse:
        response = await self.request("POST", "/v1/rank", content=request.model_dump_json(exclude_none=True), headers=JSON_CONTENT)
        return RankResponse.model_validate_json(response.content)
