"""examples/ray_universe.py, scaled down, on its two simulated nodes: it runs, prints its
throughput, and its results equal one process's (it checks them itself, symbol by symbol).
Runs under `unshare -n` like test_ray.py (see there)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from conftest import REPO

if any(name != "lo" for _, name in socket.if_nameindex()):
    pytest.skip("Ray tests run only where loopback is the only network interface (python.rs runs them "
                "under `unshare -n`)", allow_module_level=True)
pytest.importorskip("ray")


def test_the_universe_example_matches_one_process_on_two_nodes(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "examples/ray_universe.py"), "--symbols", "12", "--bars", "160",
         "--windows", "4", "--context", "64", "--mode", "eager", "--check", "12", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "on 2 nodes x 2 CPUs" in done.stdout
    assert "equal to one process: forecasts 12/12 symbols, backtests 12/12 symbols" in done.stdout
    assert "series/s" in done.stdout and "completed 12/12 symbols" in done.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["backtests", "forecasts"]
