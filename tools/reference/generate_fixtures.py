#!/usr/bin/env python3
"""Records Chronos-2 reference outputs as fixtures for the Rust parity tests.

Run with the reference virtualenv (see README.md):

    /work/refvenv/bin/python tools/reference/generate_fixtures.py

Writes (after wiping it) `crates/chronos2/tests/fixtures/reference/`:

    models/<model>/config.json, models/<model>/model.safetensors
    cases/<model>__<case>.safetensors
    manifest.json

Everything is deterministic: fixed torch / numpy seeds, one CPU thread.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    QUANTILES,
    Case,
    build_model,
    edit_config,
    rerandomize,
    round_weights,
    run_case,
    save_state_dict_as,
    write_case,
)
from chronos.chronos2 import Chronos2Model  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT_DIR = os.path.join(REPO_ROOT, "crates", "chronos2", "tests", "fixtures", "reference")

PATCH = 16


def chronos_config(context_length: int, max_output_patches: int, time_encoding_scale: int | None) -> dict:
    cfg = {
        "context_length": context_length,
        "input_patch_size": PATCH,
        "input_patch_stride": PATCH,
        "output_patch_size": PATCH,
        "quantiles": list(QUANTILES),
        "use_reg_token": True,
        "use_arcsinh": True,
        "max_output_patches": max_output_patches,
    }
    if time_encoding_scale is not None:
        cfg["time_encoding_scale"] = time_encoding_scale
    return cfg


def make_tiny_default(model_dir: str) -> Chronos2Model:
    """Default init (initializer_factor 0.05), weights rounded to f16, stored as F16.

    The config.json is the one save_pretrained writes, minus `chronos_config.time_encoding_scale`
    (the model fills that key in itself; removing it tests the loader's default =
    context_length).
    """
    model = build_model(
        d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        chronos_config=chronos_config(256, 4, None), seed=0,
    )
    round_weights(model, torch.float16)
    model.save_pretrained(model_dir)
    save_state_dict_as(model, os.path.join(model_dir, "model.safetensors"), torch.float16)

    def drop_scale(cfg):
        assert cfg["chronos_config"].get("time_encoding_scale") == 256
        del cfg["chronos_config"]["time_encoding_scale"]
        return cfg

    edit_config(os.path.join(model_dir, "config.json"), drop_scale)
    return model


def make_tiny_random(model_dir: str) -> Chronos2Model:
    """O(1)-gain re-randomised weights (seed 1), 3 heads (inner 24 != d_model 32), rounded to
    bf16 and stored as BF16. config.json uses `torch_dtype` and carries an unknown key."""
    model = build_model(
        d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=3,
        chronos_config=chronos_config(100, 3, 8192), seed=0,
    )
    rerandomize(model, seed=1)
    round_weights(model, torch.bfloat16)
    model.save_pretrained(model_dir)
    save_state_dict_as(model, os.path.join(model_dir, "model.safetensors"), torch.bfloat16)

    def respell(cfg):
        if "dtype" in cfg:
            cfg["torch_dtype"] = cfg.pop("dtype")
        cfg["use_cache"] = True
        return cfg

    edit_config(os.path.join(model_dir, "config.json"), respell)
    return model


# --------------------------------------------------------------------------------------------
# Cases. Each builder gets its own seeded numpy generator, so cases are independent.


def wave(rng: np.random.Generator, n: int, level: float = 10.0, amp: float = 1.0, noise: float = 0.2,
         period: float = 12.0) -> np.ndarray:
    t = np.arange(n)
    return level + amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)) + noise * rng.standard_normal(n)


def f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def i64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


def build_cases(context_length: int, max_output_patches: int) -> list[Case]:
    cases = []

    rng = np.random.default_rng(101)
    cases.append(Case(
        "len64", "one series of length 64 (4 full patches), 10 + sin + noise, M=1",
        f32(wave(rng, 64))[None], i64([0]), 1))

    rng = np.random.default_rng(102)
    cases.append(Case(
        "len50_m2", "one series of length 50 (left NaN padding to 64 inside the model), M=2",
        f32(wave(rng, 50, level=3.0, amp=2.0, period=7.0))[None], i64([0]), 2))

    rng = np.random.default_rng(103)
    cases.append(Case(
        "len7", "one series of length 7, shorter than one patch (9 NaN pads), M=1",
        f32(wave(rng, 7, level=-4.0, amp=0.5))[None], i64([0]), 1))

    rng = np.random.default_rng(104)
    x = 50 + np.cumsum(rng.standard_normal(300)) + wave(rng, 300, level=0.0, amp=3.0, period=24.0)
    cases.append(Case(
        "longer_than_context",
        f"one series of 300 values, longer than context_length {context_length} (left-truncated), M=1",
        f32(x)[None], i64([0]), 1))

    rng = np.random.default_rng(105)
    x = wave(rng, 80, level=20.0, amp=4.0, noise=0.5)
    x[:5] = np.nan  # leading NaNs
    x[32:48] = np.nan  # one whole patch missing
    x[rng.choice(np.r_[5:32, 48:80], size=8, replace=False)] = np.nan  # scattered gaps
    cases.append(Case(
        "nan_gaps", "one series of length 80: 5 leading NaNs, patch 32..48 all NaN, 8 scattered NaNs, M=1",
        f32(x)[None], i64([0]), 1))

    rng = np.random.default_rng(106)
    rows = np.stack([np.full(40, np.nan), np.full(40, 5.0), wave(rng, 40, level=1.0, amp=2.0)])
    cases.append(Case(
        "special_rows_encode",
        "3 independent rows of length 40: all-NaN (loc 0, scale 1), constant 5.0 (scale 1e-5), normal; "
        "with encoder_output",
        f32(rows), i64([0, 1, 2]), 1, with_encoder_output=True))

    rng = np.random.default_rng(107)
    scales = [1e-3, 1.0, 100.0, 3e4, 1.0, 1e-3, 100.0]
    leading = [0, 5, 16, 0, 20, 33, 10]
    rows = []
    for s, lead in zip(scales, leading):
        r = s * wave(rng, 48, level=2.0, amp=1.0, noise=0.3, period=rng.uniform(5, 15))
        r[:lead] = np.nan
        rows.append(r)
    cases.append(Case(
        "groups_1_2_4",
        "7 rows of length 48, group_ids [0,1,1,2,2,2,2] (groups of 1, 2, 4), leading NaNs "
        f"{leading} (fully masked patches), scales {scales}, M=2; with encoder_output",
        f32(np.stack(rows)), i64([0, 1, 1, 2, 2, 2, 2]), 2, with_encoder_output=True))

    rng = np.random.default_rng(108)
    T, F = 64, 20
    cov1 = wave(rng, T + F, level=0.0, amp=2.0, noise=0.1, period=16.0)
    cov2 = np.cumsum(rng.standard_normal(T + F)) + 5.0
    target = 10.0 + 1.5 * cov1[:T] - 0.5 * cov2[:T] + 0.3 * rng.standard_normal(T)
    other = wave(rng, T, level=100.0, amp=10.0, noise=2.0)
    context = np.stack([target, cov1[:T], cov2[:T], other])
    future = np.full((4, F), np.nan)
    future[1] = cov1[T:]
    future[2, :10] = cov2[T:T + 10]
    cases.append(Case(
        "future_covariates",
        "group 0 = [target (future NaN), covariate with fully known future, covariate with first 10 of 20 "
        "future values known], group 1 = [target without covariates]; T=64, F=20, M=2; with encoder_output",
        f32(context), i64([0, 0, 0, 1]), 2, future_covariates=f32(future), with_encoder_output=True))

    rng = np.random.default_rng(109)
    rows = np.stack([wave(rng, 96, level=0.0, amp=3.0, period=20.0),
                     wave(rng, 96, level=-50.0, amp=5.0, noise=1.0, period=9.0)])
    cases.append(Case(
        "max_patches",
        f"2 independent rows of length 96, M = max_output_patches = {max_output_patches}",
        f32(rows), i64([0, 1]), max_output_patches))

    rng = np.random.default_rng(110)
    rows = np.stack([wave(rng, 32, level=l, amp=a) for l, a in [(1, 1), (10, 3), (2, 1), (-10, 2)]])
    cases.append(Case(
        "group_ids_unordered", "4 rows of length 32 with group_ids [5, 2, 5, 2] (interleaved, not 0-based), M=1",
        f32(rows), i64([5, 2, 5, 2]), 1))

    rng = np.random.default_rng(111)
    x = 30000.0 + np.cumsum(rng.normal(0.0, 150.0, 128))
    cases.append(Case(
        "price_scale", "one BTC-like random walk around 30000, length 128, M=1",
        f32(x)[None], i64([0]), 1))

    return cases


@torch.no_grad()
def check_reload(model_dir: str, reference: Chronos2Model) -> None:
    """The written checkpoint (F16/BF16 tensors) must reproduce the in-memory f32 weights exactly."""
    loaded = Chronos2Model.from_pretrained(model_dir, dtype=torch.float32).eval()
    ref_sd, got_sd = reference.state_dict(), loaded.state_dict()
    assert ref_sd.keys() == got_sd.keys()
    for k in ref_sd:
        assert torch.equal(ref_sd[k], got_sd[k]), k
    assert loaded.chronos_config == reference.chronos_config, (loaded.chronos_config, reference.chronos_config)


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("default")

    if os.path.isdir(OUT_DIR):
        shutil.rmtree(OUT_DIR)
    os.makedirs(os.path.join(OUT_DIR, "models"))
    os.makedirs(os.path.join(OUT_DIR, "cases"))

    manifest_cases = []
    for name, make in [("tiny-default", make_tiny_default), ("tiny-random", make_tiny_random)]:
        model_dir = os.path.join(OUT_DIR, "models", name)
        model = make(model_dir)
        check_reload(model_dir, model)
        cc = model.chronos_config
        n_params = sum(p.numel() for p in model.parameters())
        print(f"== {name}: {n_params} parameters, context_length {cc.context_length}, "
              f"max_output_patches {cc.max_output_patches}, time_encoding_scale {cc.time_encoding_scale}")
        for case in build_cases(cc.context_length, cc.max_output_patches):
            tensors = run_case(model, case)
            rel = os.path.join("cases", f"{name}__{case.name}.safetensors")
            write_case(os.path.join(OUT_DIR, rel), tensors, name, case)
            b, t = case.context.shape
            print(f"  {case.name:<22} B={b} T={t:<3} M={case.num_output_patches} "
                  f"max|out| = {case.results['max_abs']:.6g}")
            manifest_cases.append({
                "file": rel,
                "model": name,
                "case": case.name,
                "description": " ".join(case.description.split()),
                "B": b,
                "T": t,
                "M": case.num_output_patches,
                "F": None if case.future_covariates is None else int(case.future_covariates.shape[1]),
                "tensors": sorted(tensors),
                "max_abs_quantile_preds": case.results["max_abs"],
            })

    files = {}
    for root, _, names in os.walk(OUT_DIR):
        for n in names:
            full = os.path.join(root, n)
            files[os.path.relpath(full, OUT_DIR)] = os.path.getsize(full)
    manifest = {
        "generator": "tools/reference/generate_fixtures.py",
        "reference": {
            "chronos-forecasting": _version("chronos-forecasting"),
            "torch": torch.__version__,
            "transformers": _version("transformers"),
        },
        "cases": manifest_cases,
        "files": dict(sorted(files.items())),
        "total_bytes": sum(files.values()),
    }
    with open(os.path.join(OUT_DIR, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"{len(manifest_cases)} cases, {manifest['total_bytes']} bytes (without manifest.json) in {OUT_DIR}")


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
