"""Faults injected for real into one local stack (every service a process, Celery worker and beat,
embedded PostgreSQL and Redis that the test may restart), under steady load on loopback.

The same scenario functions make ``reports/reliability.md`` (``movierec reliability run``)."""

import pytest

from movierec.reliability import faults
from movierec.reliability.retraining import KILL_POOL_PROCESS, KILL_WORKER

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _assert_held(result):
    broken = [name for name, held in result.checks.items() if not held]
    assert result.checks and not broken, f"{result.name}: broken {broken}; statuses {result.statuses}; notes {result.notes}"


def test_duplicate_and_out_of_order_events_are_stored_once_whatever_the_order(fault_stack):
    result = faults.duplicates_and_out_of_order(fault_stack, events=24, duplicates=8)
    _assert_held(result)
    assert result.stored == result.acknowledged == 48


def test_policy_away_serves_the_ranker_order(fault_stack):
    result = faults.policy_killed(fault_stack, rate_per_s=6, down_s=3)
    _assert_held(result)
    assert result.errors_5xx == 0 and result.requests > 10


def test_ranker_killed_serves_degraded_then_recovers(fault_stack):
    result = faults.ranker_killed(fault_stack, rate_per_s=6, down_s=4)
    _assert_held(result)
    assert result.degraded > 0 and result.recovery_s is not None


def test_redis_restart_keeps_serving_and_celery_reconnects(fault_stack):
    result = faults.redis_restarted(fault_stack, rate_per_s=8, down_s=2)
    _assert_held(result)


def test_postgres_restart_during_feedback_burst_loses_nothing(fault_stack):
    result = faults.postgres_restarted(fault_stack, rate_per_s=12, down_s=3)
    _assert_held(result)
    assert result.acknowledged == result.stored and result.acknowledged > 20


@pytest.mark.parametrize("kill", [KILL_POOL_PROCESS, KILL_WORKER])
def test_worker_killed_while_retraining_publishes_once_and_serving_stays_valid(fault_stack, kill):
    result = faults.worker_killed_while_retraining(fault_stack, kill, visibility_timeout_s=15)
    _assert_held(result)
    assert result.requests > 10 and result.errors_5xx == 0 and result.recovery_s is not None
