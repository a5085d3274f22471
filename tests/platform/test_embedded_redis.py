"""The embedded Redis names itself while it runs, so commands run beside the stack can reach it."""

from __future__ import annotations

import pytest

from movierec.launcher.servers import URL_FILE, EmbeddedRedis, running_embedded_redis_url, servers_folder

pytestmark = pytest.mark.integration


def test_a_running_embedded_redis_is_found_and_a_stopped_one_is_not(tmp_path):
    home, other = tmp_path / "home", tmp_path / "other"
    embedded = EmbeddedRedis(servers_folder(home) / "redis")
    assert running_embedded_redis_url(home) is None
    try:
        url = embedded.start()
        assert running_embedded_redis_url(home) == url
        # a URL file naming a Redis that keeps its data elsewhere is not this home's
        (servers_folder(other) / "redis").mkdir(parents=True)
        (servers_folder(other) / "redis" / URL_FILE).write_text(url + "\n")
        assert running_embedded_redis_url(other) is None
    finally:
        embedded.stop()
    assert not (servers_folder(home) / "redis" / URL_FILE).exists()
    # the file of a stack that was killed: nothing answers there any more
    (servers_folder(home) / "redis" / URL_FILE).write_text(url + "\n")
    assert running_embedded_redis_url(home) is None
