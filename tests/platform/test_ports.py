from __future__ import annotations

import socket

import pytest

from movierec.launcher.ports import EPHEMERAL_PORTS_START, free_port_offset, stack_ports
from movierec.launcher.supervisor import StackError


def test_the_offset_frees_every_stack_port_below_the_ephemeral_range():
    ports = stack_ports()
    assert {8000, 8001, 8011, 8002, 8003, 8004, 9808, 9090} <= set(ports)
    offset = free_port_offset()
    assert all(port + offset < EPHEMERAL_PORTS_START for port in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port + offset))  # raises if the offset was not free


def test_a_clear_error_when_every_offset_has_a_port_taken():
    taken = []
    try:
        for offset in range(10_000, EPHEMERAL_PORTS_START - max(stack_ports()), 10):
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", 8000 + offset))  # the gateway port under every offset
            except OSError:
                sock.close()
                continue
            taken.append(sock)
        with pytest.raises(StackError, match="no free range of ports"):
            free_port_offset()
    finally:
        for sock in taken:
            sock.close()
