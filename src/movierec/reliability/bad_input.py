"""Hand-written bad input against the running stack: each must get a clear 4xx that names the
problem, and nothing already stored may change (checked by a snapshot before and after)."""

from __future__ import annotations

import io
import json
import socket
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx

from movierec.reliability.report import CaseResult
from movierec.reliability.stack import FaultStack
from movierec.storage import FeedbackStore, create_engine_for


@dataclass
class BadRequest:
    name: str
    service: str
    method: str
    path: str
    kwargs: dict = field(default_factory=dict)
    expected: tuple[int, ...] = (422,)
    mentions: str | None = None
    """A word the error message must contain (the field at fault)."""


def _event(**overrides) -> dict:
    return {"event_id": f"bad-{uuid.uuid4().hex[:10]}", "user_id": 1, "movie_id": 1, "kind": "watch", **overrides}


def _png_header_garbage() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def cases() -> list[BadRequest]:
    from movierec.reliability.faults import user_headers

    json_header = {"content-type": "application/json"}
    user_1 = user_headers(1)
    recs, fb = "/v1/recommendations", "/v1/feedback"
    return [
        BadRequest("malformed JSON (recommendations)", "gateway", "POST", recs, {"content": b'{"user_id": 1, "k": ', "headers": json_header}),
        BadRequest("malformed JSON (feedback)", "gateway", "POST", fb, {"content": b"{not json}", "headers": {**json_header, **user_1}}),
        BadRequest("wrong type: user_id is text", "gateway", "POST", recs, {"json": {"user_id": "abc", "k": 10}}, mentions="user_id"),
        BadRequest("wrong type: k is text", "gateway", "POST", recs, {"json": {"user_id": 1, "k": "ten"}}, mentions="k"),
        BadRequest("huge k", "gateway", "POST", recs, {"json": {"user_id": 1, "k": 10**9}}, mentions="k"),
        BadRequest("negative k", "gateway", "POST", recs, {"json": {"user_id": 1, "k": -5}}, mentions="k"),
        BadRequest("year range upside down", "gateway", "POST", recs,
                   {"json": {"user_id": 1, "k": 5, "filters": {"year_min": 2000, "year_max": 1990}}}, mentions="year"),
        BadRequest("unknown genre filter", "gateway", "POST", recs,
                   {"json": {"user_id": 1, "k": 5, "filters": {"include_genres": ["NoSuchGenre"]}}}, mentions="genre"),
        BadRequest("negative watch time", "gateway", "POST", fb, {"json": _event(watch_seconds=-30), "headers": user_1}, mentions="watch_seconds"),
        BadRequest("absurd watch time (10 years)", "gateway", "POST", fb, {"json": _event(watch_seconds=3.2e8), "headers": user_1}, mentions="watch_seconds"),
        BadRequest("rating above the scale", "gateway", "POST", fb, {"json": _event(kind="rating", rating=7), "headers": user_1}, mentions="rating"),
        BadRequest("rating below the scale", "gateway", "POST", fb, {"json": _event(kind="rating", rating=-1), "headers": user_1}, mentions="rating"),
        BadRequest("unknown event kind", "gateway", "POST", fb, {"json": _event(kind="purchase"), "headers": user_1}, mentions="kind"),
        BadRequest("extra field in an event", "gateway", "POST", fb, {"json": _event(price=3), "headers": user_1}, mentions="price"),
        BadRequest("unknown user", "gateway", "POST", recs, {"json": {"user_id": 99_999_999, "k": 5}}, (404,), mentions="99999999"),
        BadRequest("unknown liked movie", "gateway", "POST", recs, {"json": {"liked_movie_ids": [88_888_888], "k": 5}}, (404,), mentions="88888888"),
        BadRequest("unknown movie", "gateway", "GET", "/v1/movies/77777777", {}, (404,), mentions="77777777"),
        BadRequest("feedback on an unknown movie", "gateway", "POST", fb, {"json": _event(movie_id=66_666_666), "headers": user_1}, (404,), mentions="66666666"),
        BadRequest("body over the size limit (17 MiB)", "gateway", "POST", recs,
                   {"content": b'{"liked_movie_ids": [' + b"1," * (17 * 512 * 1024) + b'1], "k": 5}', "headers": json_header}, (413,)),
        BadRequest("corrupt poster upload", "feature-extractor", "POST", "/v1/movies/500001/features",
                   {"data": {"title": "Corrupt poster"}, "files": {"poster": ("p.png", _png_header_garbage(), "image/png")}}, (422, 400, 415), mentions="poster"),
        BadRequest("corrupt audio upload", "feature-extractor", "POST", "/v1/movies/500002/features",
                   {"data": {"title": "Corrupt audio"}, "files": {"audio": ("a.wav", b"RIFF\x00\x00\x00\x00WAVEjunk" * 10, "audio/wav")}}, (422, 400, 415), mentions="audio"),
        BadRequest("oversized poster upload (11 MiB)", "feature-extractor", "POST", "/v1/movies/500003/features",
                   {"data": {"title": "Huge poster"}, "files": {"poster": ("p.jpg", b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024), "image/jpeg")}}, (413,)),
    ]


def _snapshot(stack: FaultStack) -> dict:
    store = FeedbackStore(create_engine_for(stack.database_url, pool_size=1))
    try:
        rows, last = store.count(), store.last_seq()
    finally:
        store.engine.dispose()
    movie = httpx.get(stack.url("gateway") + "/v1/movies/1", timeout=10).json()
    return {"feedback_rows": rows, "last_seq": last, "movie_1": movie}


def slow_client(stack: FaultStack, body_timeout_s: float) -> CaseResult:
    """Send headers and half a body, then stall: the service must answer 408 and stay responsive."""
    url = urlparse(stack.url("gateway"))
    body = json.dumps({"user_id": 1, "k": 5}).encode()
    with socket.create_connection((url.hostname, url.port), timeout=body_timeout_s + 10) as sock:
        sock.sendall(b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:5])
        started = time.monotonic()
        others_ok = httpx.get(stack.url("gateway") + "/v1/movies/1", timeout=5).status_code == 200
        answer = io.BytesIO()
        try:
            while b"\r\n\r\n" not in answer.getvalue():
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer.write(chunk)
        except socket.timeout:
            pass
        waited = time.monotonic() - started
    head = answer.getvalue().split(b"\r\n", 1)[0].decode(errors="replace")
    status = int(head.split()[1]) if head.startswith("HTTP/") else None
    return CaseResult("slow client (stalls mid-body)", "408, others still served", status,
                      status == 408 and others_ok, f"answered after {waited:.1f} s; other requests served meanwhile: {others_ok}")


def run_bad_input(stack: FaultStack, body_timeout_s: float = 15.0) -> list[CaseResult]:
    before = _snapshot(stack)
    results = []
    with httpx.Client(timeout=60) as client:
        for case in cases():
            response = client.request(case.method, stack.url(case.service) + case.path, **case.kwargs)
            text = response.text
            ok = response.status_code in case.expected and (case.mentions is None or case.mentions.lower() in text.lower())
            detail = "" if ok else f"got {response.status_code}: {text[:160]}"
            results.append(CaseResult(case.name, "/".join(map(str, case.expected)) + (f" naming {case.mentions}" if case.mentions else ""),
                                      response.status_code, ok, detail))
    results.append(slow_client(stack, body_timeout_s))
    after = _snapshot(stack)
    unchanged = before == after
    results.append(CaseResult("nothing stored changed", "same feedback rows and movie", None, unchanged,
                              "" if unchanged else f"before {before}, after {after}"))
    return results
