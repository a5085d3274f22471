"""Client of the feedback service: store an event (idempotent on ``event_id``), read a user's
events, delete all of a user's data."""

from __future__ import annotations

from typing import Any

from movierec.clients.base import ServiceClient
from movierec.contracts.feedback import FeedbackEvent


class FeedbackClient(ServiceClient):
    service = "feedback"

    async def record(self, event: FeedbackEvent) -> tuple[int, dict[str, Any]]:
        """The feedback service's status (201 stored, 200 already stored) and its answer."""
        response = await self.request("POST", "/v1/events", json=event.model_dump(mode="json"))
        return response.status_code, response.json()

    async def user_events(self, user_id: int, limit: int = 500) -> list[dict[str, Any]]:
        response = await self.request("GET", f"/v1/users/{int(user_id)}/events", params={"limit": limit})
        body = response.json()
        return body.get("events", body.get("items", [])) if isinstance(body, dict) else body

    async def delete_user(self, user_id: int) -> dict[str, Any]:
        response = await self.request("DELETE", f"/v1/users/{int(user_id)}")
        return response.json() if response.content else {}
