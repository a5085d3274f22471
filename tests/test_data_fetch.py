"""``movierec data fetch`` against a local HTTP server serving files made here."""

from __future__ import annotations

import http.server
import io
import json
import threading
import zipfile
from pathlib import Path

import pytest

from movierec.data.fetch import FetchError, fetch_movielens, fetch_posters

POSTER_BYTES = b"\xff\xd8\xff\xe0fake-jpeg-bytes"


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server API)
        path = self.path.split("?")[0]
        self.hits.append(self.path)
        if path.startswith("/api/movie/"):
            if "api_key=good" not in self.path:
                self.send_response(401)
                self.end_headers()
                return
            tmdb = path.rsplit("/", 1)[1]
            body = json.dumps({"poster_path": f"/p{tmdb}.jpg"} if tmdb != "404" else {"poster_path": None}).encode()
        elif path in self.files:
            body = self.files[path]
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t100\n")
        zf.writestr("ml-100k/u.item", "1|Toy Story (1995)|x||u|" + "|".join(["0"] * 19) + "\n")
    _Handler.files = {"/ml-100k.zip": buf.getvalue(), "/img/w185/p862.jpg": POSTER_BYTES, "/img/w185/p854.jpg": POSTER_BYTES, "/bad.zip": b"not a zip"}
    _Handler.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_archive_unpacks_and_is_resumable(server, tmp_path):
    folder = fetch_movielens("ml-100k", tmp_path, base_url=server, progress=False)
    assert (folder / "u.data").read_text() == "1\t1\t5\t100\n"
    n = len(_Handler.hits)
    fetch_movielens("ml-100k", tmp_path, base_url=server, progress=False)
    assert len(_Handler.hits) == n  # already there: nothing downloaded again
    assert not list(tmp_path.glob("*.part"))


def test_fetch_errors_are_clear(server, tmp_path):
    with pytest.raises(FetchError, match="unknown MovieLens archive"):
        fetch_movielens("ml-2b", tmp_path, base_url=server)
    with pytest.raises(FetchError, match="answered 404"):
        fetch_movielens("ml-1m", tmp_path, base_url=server, progress=False)


def test_fetch_posters(server, tmp_path):
    report = fetch_posters({1: "862", 2: "854", 3: "404"}, tmp_path, api_key="good",
                           api_base=f"{server}/api", image_base=f"{server}/img", progress=False)
    assert report.downloaded == 2 and 3 in report.failed
    assert (tmp_path / "1.jpg").read_bytes() == POSTER_BYTES
    again = fetch_posters({1: "862"}, tmp_path, api_key="good", api_base=f"{server}/api", image_base=f"{server}/img", progress=False)
    assert again.already_present == 1 and again.downloaded == 0


def test_fetch_posters_bad_key(server, tmp_path):
    with pytest.raises(FetchError, match="refused the API key"):
        fetch_posters({1: "862"}, tmp_path, api_key="bad", api_base=f"{server}/api", image_base=f"{server}/img", progress=False)
    with pytest.raises(FetchError, match="API key is needed"):
        fetch_posters({1: "862"}, tmp_path, api_key="", progress=False)
