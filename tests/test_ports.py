"""The loopback ports test servers get: below the kernel's ephemeral range, so a server stopped mid-test can start
again on its port (no client connection, nor a connection retried against the stopped port, which the kernel can
connect to itself, takes it meanwhile), and one slice of that range per pytest-xdist worker."""

from __future__ import annotations

import socket

from landfall.testing import ports


def test_ports_are_free_distinct_and_below_the_ephemeral_range():
    got = ports.free_ports(6, twin=True) + ports.free_ports(3)
    assert len(set(got)) == len(got)
    for port in got:
        assert ports.BASE.start <= port < ports.BASE.stop < ports.ephemeral_low() - ports.TWIN
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free
    for port in got[:6]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port + ports.TWIN))  # its gRPC twin too


def test_each_worker_draws_from_its_own_slice(monkeypatch):
    drawn = {}
    for worker in ("gw0", "gw1", "gw3"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        drawn[worker] = set(ports.free_ports(20))
    width = len(ports.BASE) // ports.SLICES
    for worker, got in drawn.items():
        low = ports.BASE.start + int(worker[2:]) * width
        assert all(low <= p < low + width for p in got), worker
    assert not drawn["gw0"] & drawn["gw1"] and not drawn["gw1"] & drawn["gw3"]


def test_a_port_handed_out_is_not_handed_out_again_while_its_server_may_be_down():
    first = ports.free_ports(40)
    again = ports.free_ports(40)
    assert not set(first) & set(again)
