"""Shared fixtures of the Python tests: paths, pipelines on the tiny reference checkpoints,
the fixture tolerance rule, and the `chronos2` CLI the backtest and forecast tests compare with."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from chronos2 import Chronos2Pipeline

REPO = Path(__file__).resolve().parents[3]
MODELS = REPO / "crates/chronos2/tests/fixtures/reference/models"
MODEL_CASES = REPO / "crates/chronos2/tests/fixtures/reference"
PIPELINE_CASES = REPO / "crates/forecast/tests/fixtures/pipeline"


def shared_ohlc_files() -> list:
    """The real market data files of the repository's data/ folder."""
    return sorted((REPO / "data").glob("*.csv"))


_PIPELINES: dict = {}


def pipeline(name: str) -> Chronos2Pipeline:
    """One pipeline per tiny checkpoint (or `builtin`), shared by the tests."""
    if name not in _PIPELINES:
        path = "builtin" if name == "builtin" else MODELS / name
        _PIPELINES[name] = Chronos2Pipeline.from_pretrained(path, mode="eager", threads=2)
    return _PIPELINES[name]


def assert_close(actual, expected, what: str) -> float:
    """The fixture rule: max |ours - ref| <= 1e-5 * max(1, max |ref|) over the whole output,
    NaN where the reference has NaN. Returns the worst error as a fraction of the allowance."""
    actual = np.asarray(actual, dtype=np.float64).ravel()
    expected = np.asarray(expected, dtype=np.float64).ravel()
    assert actual.shape == expected.shape, f"{what}: {actual.shape} values, expected {expected.shape}"
    nan = np.isnan(expected)
    assert np.array_equal(np.isnan(actual), nan), f"{what}: NaN in different places"
    allowance = 1e-5 * max(1.0, float(np.max(np.abs(expected[~nan]), initial=0.0)))
    diff = np.abs(actual[~nan] - expected[~nan])
    worst = float(diff.max(initial=0.0))
    if worst > allowance:
        i = int(np.argmax(diff))
        pytest.fail(f"{what}: worst |ours - ref| = {worst:.3g} at {i} (ours {actual[~nan][i]}, "
                    f"ref {expected[~nan][i]}), allowed {allowance:.3g}")
    return worst / allowance


def read_safetensors(path: Path) -> dict:
    """The float32/int64 tensors of a safetensors file."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    dtypes = {"F32": np.float32, "I64": np.int64, "F64": np.float64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[8 + size + start : 8 + size + end]
        out[name] = np.frombuffer(raw, dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def cli(*args: str) -> str:
    """Runs the `chronos2` CLI the test harness built; skips when it is not there."""
    binary = os.environ.get("CHRONOS2_CLI")
    if not binary or not Path(binary).exists():
        pytest.skip("CHRONOS2_CLI is not set (cargo test sets it)")
    done = subprocess.run([binary, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout
