"""`scout bench ingest` splits the CPU of each phase between the client, the API and the broker, and says what
that split implies for the ratio of single POSTs to no-op requests."""

from __future__ import annotations

import os
import socket

from cli.bench.ingest import Cpu, _median_pass, cpu_bounds


def test_cpu_bounds_compare_whole_costs_and_the_cost_without_scouts_work() -> None:
    noop = {"client": 55.0, "api": 80.0, "broker": 1.0, "total": 136.0}
    post = {"client": 77.0, "api": 147.0, "broker": 40.0, "total": 264.0}
    bounds = cpu_bounds(noop, post)
    assert bounds["cpu_ratio_to_noop"] == 136.0 / 264.0
    # the API spending on a POST what it spends on a no-op: client 77 + API 80 + broker 40
    assert bounds["cpu_ratio_if_scout_work_were_free"] == 136.0 / 197.0


def test_the_broker_is_found_by_its_listening_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        cpu = Cpu.of_listener(f"127.0.0.1:{port},127.0.0.1:1")
        assert cpu.pid == os.getpid()
        assert cpu.seconds() > 0
    assert Cpu.of_listener(f"127.0.0.1:{port}").pid is None  # nobody listens any more: no CPU counted
    assert Cpu(None).seconds() == 0.0


def test_the_median_pass_is_reported() -> None:
    passes = [{"tx_s": 5.0, "n": 1}, {"tx_s": 7.0, "n": 2}, {"tx_s": 6.0, "n": 3}]
    assert _median_pass(passes)["n"] == 3
