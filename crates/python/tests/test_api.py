"""The package's surface: settings from arguments and the CLI's environment variables,
documentation, stubs, and the reference's properties."""

from __future__ import annotations

import inspect
import pydoc
import re
from pathlib import Path

import numpy as np

import chronos2
from chronos2 import Chronos2Pipeline
from conftest import MODELS, pipeline


def test_settings_from_arguments_and_environment(monkeypatch):
    monkeypatch.setenv("TORCH_COMPILED", "1")
    monkeypatch.setenv("CHRONOS_COMPILE_MODE", "default")
    from_env = Chronos2Pipeline.from_pretrained(MODELS / "tiny-random", threads=1)
    assert "mode=compiled" in from_env.settings and "default" in from_env.settings
    assert "threads=1" in from_env.settings
    argument_wins = Chronos2Pipeline.from_pretrained(MODELS / "tiny-random", mode="eager")
    assert "mode=eager" in argument_wins.settings


def test_compile_cache_policy(monkeypatch, tmp_path):
    monkeypatch.setenv("CHRONOS2_CACHE_DIR", str(tmp_path))
    with __import__("pytest").raises(ValueError, match="--compile-cache only"):
        Chronos2Pipeline.from_pretrained(MODELS / "tiny-random", mode="compiled", compile_cache="only")
    first = Chronos2Pipeline.from_pretrained(MODELS / "tiny-random", mode="compiled")
    assert "compile_cache=prefer" in first.settings
    assert len(list(tmp_path.glob("*.c2pack"))) == 1
    monkeypatch.setenv("CHRONOS_COMPILE_CACHE", "only")
    hit = Chronos2Pipeline.from_pretrained(MODELS / "tiny-random", mode="compiled")
    assert "compile_cache=only" in hit.settings


def test_builtin_and_model_environment_variable(monkeypatch):
    monkeypatch.setenv("CHRONOS2_MODEL", str(MODELS / "tiny-default"))
    assert Chronos2Pipeline.from_pretrained().model_label.endswith("tiny-default")
    assert pipeline("builtin").model_label == "chronos2-mini"


def test_reference_properties():
    pipe = pipeline("tiny-random")
    assert pipe.quantiles[0] == 0.01 and 0.5 in pipe.quantiles
    assert pipe.model_prediction_length == pipe.max_output_patches * pipe.model_output_patch_size
    assert pipe.model_context_length > 0
    assert "tiny-random" in repr(pipe)


def test_version_is_the_crates_version():
    cargo = (Path(__file__).resolve().parents[3] / "Cargo.toml").read_text()
    expected = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
    assert chronos2.__version__ == expected
    assert "__version__" in chronos2.__all__


def test_help_and_docstrings():
    text = pydoc.render_doc(chronos2, renderer=pydoc.plaintext)
    for name in ["Chronos2Pipeline", "predict_df", "backtest", "from_pretrained"]:
        assert name in text
    public = [Chronos2Pipeline, chronos2.backtest, chronos2.BacktestResult]
    public += [m for _, m in inspect.getmembers(Chronos2Pipeline) if not _.startswith("_")]
    for item in public:
        assert inspect.getdoc(item), f"{item} has no docstring"


def test_stubs_ship_with_the_package():
    root = Path(chronos2.__file__).parent
    assert (root / "py.typed").exists()
    stub = (root / "__init__.pyi").read_text()
    for name in ["def predict_df", "def predict_quantiles", "def backtest", "class BacktestResult"]:
        assert name in stub
    assert (root / "_native.pyi").exists()


def test_float32_input_is_passed_without_a_copy():
    from chronos2._inputs import to_tasks

    cube = np.zeros((3, 2, 50), dtype=np.float32)
    tasks = to_tasks(cube, prediction_length=4)
    assert all(np.shares_memory(targets, cube) for targets, _ in tasks)
    series = np.arange(40, dtype=np.float32)
    ((targets, _),) = to_tasks([{"target": series}], prediction_length=4)
    assert np.shares_memory(targets, series)


def test_the_cpu_device_by_argument_device_map_or_environment(monkeypatch):
    # device= / device_map= / CHRONOS_DEVICE choose where the model runs; "cpu" runs
    # as before (a GPU needs the `cuda` build, see test_errors.py).
    for kwargs in [{"device": "cpu"}, {"device_map": "cpu"}, {"device_map": "auto"}]:
        pipe = Chronos2Pipeline.from_pretrained(MODELS / "tiny-random", **kwargs)
        assert "device=" not in pipe.settings
    monkeypatch.setenv("CHRONOS_DEVICE", "cuda")
    assert "device=" not in Chronos2Pipeline.from_pretrained(MODELS / "tiny-random", device="cpu").settings
    try:
        on_gpu = Chronos2Pipeline.from_pretrained(MODELS / "tiny-random")
    except ValueError as e:  # the default build
        assert "CHRONOS_DEVICE" in str(e) and "--features cuda" in str(e)
    else:  # a `cuda` build (on the CPU, after one warning, where there is no GPU)
        assert "device=cuda:0" in on_gpu.settings
