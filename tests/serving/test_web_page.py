"""The web page in headless Chromium (Debian's ``chromium``), driven over the DevTools protocol:
pick a known user, see posters and explanations, watch a movie, see the list change; then a new
viewer from liked movies. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import websocket
from fastapi import FastAPI

from movierec.contracts.decisions import ServedDecision
from movierec.contracts.policy import RankedItem, RankRequest, RankResponse
from movierec.serving.catalog import MovieCatalog
from movierec.settings import REPO_ROOT, get_settings
from movierec_feedback.app import create_app as create_feedback_app
from movierec_feedback.settings import FeedbackSettings
from movierec_gateway.app import create_app as create_gateway_app
from movierec_gateway.settings import GatewaySettings
from movierec_ranker.app import create_app as create_ranker_app
from movierec_ranker.settings import RankerSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHARED_POSTERS = Path(os.environ.get("MOVIEREC_SHARED_DIR") or REPO_ROOT.parent / "shared") / "data" / "posters"


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if IN_CI:
            pytest.fail("chromium is not installed (Debian package `chromium`)")
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    return found


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, binary: str, profile: Path):
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "--window-size=1280,1100", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        ws_url = None
        deadline = time.monotonic() + 60
        while ws_url is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            ws_url = match.group(1) if match else None
        if ws_url is None:
            self.close()
            raise RuntimeError("chromium did not start its DevTools endpoint")
        self.browser = websocket.create_connection(ws_url, timeout=30)
        self._id = 0
        target = self._call(self.browser, "Target.createTarget", {"url": "about:blank"})["targetId"]
        page_ws = ws_url.split("/devtools/")[0] + f"/devtools/page/{target}"
        self.page = websocket.create_connection(page_ws, timeout=30)

    def _call(self, ws, method: str, params: dict | None = None) -> dict:
        self._id += 1
        ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        while True:
            message = json.loads(ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def goto(self, url: str) -> None:
        self._call(self.page, "Page.navigate", {"url": url})

    def js(self, expression: str):
        result = self._call(self.page, "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        shown = self.js("document.getElementById('error')?.textContent")
        raise AssertionError(f"timed out waiting for {expression}; error box: {shown}")

    def screenshot(self, path: Path) -> None:
        data = self._call(self.page, "Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        for ws in (getattr(self, "page", None), getattr(self, "browser", None)):
            if ws is not None:
                ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def passthrough_policy() -> FastAPI:
    """Policy double: the ranker's order, probability 1 (as the real one does without a DQN)."""
    app = FastAPI()

    @app.post("/v1/rank")
    async def rank(body: RankRequest) -> RankResponse:
        return RankResponse(items=[RankedItem(movie_id=c.movie_id, q_value=c.score, propensity=1.0) for c in body.candidates[: body.k]], policy_version="greedy")

    return app


@pytest.fixture
def page_url(catalog_dataset, model_folder, serve, feedback_database_url, redis_db, gateway_redis_url, tmp_path):
    ranker = serve(create_ranker_app(RankerSettings(artifact_dir=model_folder, device="cpu", reload_interval_s=0, added_items_file=tmp_path / "added.jsonl"), catalog=MovieCatalog.from_dataset(catalog_dataset)))
    policy = serve(passthrough_policy())
    feedback = serve(create_feedback_app(FeedbackSettings(database_url=feedback_database_url, redis_url=gateway_redis_url)))
    gateway = serve(create_gateway_app(GatewaySettings(
        ranker_urls=ranker.url, policy_url=policy.url, feedback_url=feedback.url, redis_url=gateway_redis_url,
        policy_timeout_s=10.0, feedback_timeout_s=10.0,  # no fallbacks from a slow first call: not what is tested here
        poster_dir=SHARED_POSTERS if SHARED_POSTERS.is_dir() else tmp_path / "no-posters", added_poster_dir=tmp_path / "added",
    ), catalog=MovieCatalog.from_dataset(catalog_dataset)))
    return gateway.url


@pytest.fixture
def browser(tmp_path):
    b = Browser(chromium_binary(), tmp_path / "chromium-profile")
    yield b
    b.close()


CARD_IDS = "Array.from(document.querySelectorAll('#cards .card')).map(c => Number(c.dataset.movieId))"


def test_known_user_watches_a_movie_and_the_list_changes(browser, page_url, redis_db):
    browser.goto(f"{page_url}/?user=1")
    browser.wait_for("document.querySelectorAll('#cards .card').length === 12")
    first = browser.js(CARD_IDS)
    status = browser.js("document.getElementById('status').textContent")
    assert "user 1" in status and "policy greedy" in status
    explanations = browser.js("Array.from(document.querySelectorAll('#cards .why')).map(e => e.textContent)")
    assert all(e.startswith("Because you liked") for e in explanations)
    if SHARED_POSTERS.is_dir():  # posters are third-party files, present on development machines and CI
        browser.wait_for("Array.from(document.querySelectorAll('#cards img')).filter(i => i.complete && i.naturalWidth > 0).length >= 10")
    browser.screenshot(ARTIFACTS / "web_page_known_user.png")

    browser.js("document.querySelector('#cards .card [data-act=\"watch\"]').click()")
    browser.wait_for(f"JSON.stringify({CARD_IDS}) !== {json.dumps(json.dumps(first, separators=(',', ':')))}")
    after = browser.js(CARD_IDS)
    assert first[0] not in after and len(after) == 12
    # the watch went back with the list's decision id (the new list's miss cached the user's events)
    logged = [ServedDecision.model_validate_json(f["d"]) for _, f in redis_db.xrange(get_settings().decision_log_key)]
    watched = [e for e in json.loads(redis_db.get("recs:1:history")) if e["kind"] == "watch"]
    assert len(watched) == 1 and watched[0]["decision_id"] == logged[0].decision_id and logged[0].slate[0] == first[0]
    browser.js("(() => { const s = document.querySelector('#cards .card select'); s.value = '5'; s.dispatchEvent(new Event('change')); })()")
    browser.wait_for(f"!{CARD_IDS}.includes({after[0]})")
    assert not browser.js("!document.getElementById('error').hidden")
    browser.screenshot(ARTIFACTS / "web_page_after_feedback.png")


def test_new_viewer_likes_movies_and_filters(browser, page_url):
    browser.goto(page_url)
    browser.wait_for("document.querySelectorAll('#genres-include option').length > 10")
    browser.js("(() => { const s = document.getElementById('search'); s.value = 'toy story'; s.dispatchEvent(new Event('input')); })()")
    browser.wait_for("document.querySelectorAll('#search-results button').length > 0")
    browser.js("document.querySelector('#search-results button').click()")
    browser.wait_for("document.querySelectorAll('#liked .chip').length === 1")
    browser.js("(() => { const s = document.getElementById('genres-include'); s.querySelector('option[value=\"Comedy\"]').selected = true; })()")
    browser.js("document.getElementById('use-new').click()")
    browser.wait_for("document.querySelectorAll('#cards .card').length === 12")
    status = browser.js("document.getElementById('status').textContent")
    assert "new viewer" in status
    genres = browser.js("Array.from(document.querySelectorAll('#cards .meta')).map(e => e.textContent)")
    assert all("Comedy" in g for g in genres)
    assert 1 not in browser.js(CARD_IDS)
    browser.screenshot(ARTIFACTS / "web_page_new_viewer.png")
