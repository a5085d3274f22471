"""A free port offset for a whole local stack, so stacks started side by side (tests, benchmarks,
fault runs) do not collide with each other or with a stack already running."""

from __future__ import annotations

import random
import socket

from movierec.launcher.services import CELERY_PROCESSES, REPLICA_PORT_STEP, SERVICES
from movierec.launcher.stack import PROMETHEUS_PORT
from movierec.launcher.supervisor import StackError

EPHEMERAL_PORTS_START = 32_768


def stack_ports(replicas: int = 3) -> list[int]:
    """Every port a local stack binds at offset 0: the services (up to ``replicas`` of each scalable
    one), the Celery metrics, Prometheus."""
    services = [s.port + i * REPLICA_PORT_STEP for s in SERVICES for i in range(replicas if s.scalable else 1)]
    return services + [p.metrics_port for p in CELERY_PROCESSES if p.metrics_port] + [PROMETHEUS_PORT]


def free_port_offset(host: str = "127.0.0.1") -> int:
    """A port offset under which every port of the stack is free on ``host`` right now. The ports
    stay below Linux's ephemeral range (32768 and up), where an outgoing connection can take a
    port between this check and the service's bind (a CI run lost a fault stack that way)."""
    ports = stack_ports()
    rng = random.Random()
    for _ in range(200):
        offset = rng.randrange(10_000, EPHEMERAL_PORTS_START - max(ports), 10)
        try:
            for port in ports:
                with socket.socket() as sock:
                    sock.bind((host, port + offset))
        except OSError:
            continue
        return offset
    raise StackError("no free range of ports found for the stack")
