"""Pieces of the worker-killed-while-retraining drill that need no stack: the pointer watcher
catches a partial folder, and a short visibility timeout gets a sweep fast enough to matter."""

import time

from movierec.reliability.retraining import PointerWatcher
from movierec.rl.artifact import publish_policy
from movierec.rl.tiny import make_tiny_world, tiny_policy
from movierec.tasks.app import broker_transport_options


def _wait_until(condition, timeout_s: float = 30.0) -> None:
    """The watcher polls on its own thread (and loads each new version), so wait for what it saw."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the pointer watcher did not get there in time"
        time.sleep(0.01)


def test_the_pointer_watcher_reports_a_pointer_to_a_partial_folder(tmp_path):
    publish_policy(tiny_policy(make_tiny_world(iterations=5), "v1"), tmp_path)
    watcher = PointerWatcher(tmp_path, time.monotonic, poll_s=0.01).start()
    _wait_until(lambda: watcher.versions == ["v1"] and watcher.polls > 1)  # v1 seen and loaded
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "policy.json").write_text("{}")
    (tmp_path / "current").write_text("v2\n")  # what a non-atomic publish could expose
    _wait_until(lambda: any(b.startswith("v2: does not load") for b in watcher.broken))
    watcher.stop()
    assert watcher.versions == ["v1", "v2"]
    assert not [b for b in watcher.broken if b.startswith("v1")]
    assert any(b.startswith("v2: missing tables.npz, policy.pt") for b in watcher.broken)
    assert any(b.startswith("v2: does not load") for b in watcher.broken)


def test_dead_workers_messages_are_swept_every_fifth_of_the_visibility_timeout():
    assert broker_transport_options(600) == {"visibility_timeout": 600, "unacked_restore_interval": 10.0, "unacked_restore_throttle": 10,
                                             "unacked_mutex_expire": 100}
    short = broker_transport_options(15)
    assert short["unacked_restore_interval"] * short["unacked_restore_throttle"] == 3.0
    # a worker killed while it sweeps holds the sweep's lock for one period (at least 5 s), not kombu's 300 s
    assert short["unacked_mutex_expire"] == 5


def test_the_broker_channel_takes_the_sweep_lock_expiry(redis_url):
    from movierec.tasks.app import make_celery

    app = make_celery(redis_url)
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        assert channel.unacked_mutex_expire == app.conf.broker_transport_options["unacked_mutex_expire"] < 300
        assert channel.visibility_timeout == app.conf.broker_transport_options["visibility_timeout"]


def test_a_drill_whose_task_never_ran_again_says_where_the_message_is(redis_url, redis_client):
    from movierec.reliability.retraining import DRILL_QUEUE, broker_state

    keys = ("unacked", "unacked_index", "unacked_mutex", DRILL_QUEUE)
    redis_client.delete(*keys)
    try:
        assert broker_state(redis_url) == f"0 unacknowledged (delivered - s ago), 0 waiting in {DRILL_QUEUE}, sweep lock free"
        redis_client.hset("unacked", "tag-1", "{}")
        redis_client.zadd("unacked_index", {"tag-1": time.time() - 20})
        redis_client.set("unacked_mutex", "someone", px=60_000)
        state = broker_state(redis_url)
        assert state.startswith(f"1 unacknowledged (delivered 20 s ago), 0 waiting in {DRILL_QUEUE}, sweep lock held for ")
        assert 55 < float(state.rsplit("held for ", 1)[1].split(" s")[0]) <= 60
    finally:
        redis_client.delete(*keys)
