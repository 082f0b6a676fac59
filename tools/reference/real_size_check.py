#!/usr/bin/env python3
"""Builds a random checkpoint with the real amazon/chronos-2 shape and records 3 reference cases.

    /work/refvenv/bin/python tools/reference/real_size_check.py DIR [--seed N] [--rerandomize]

DIR receives `config.json` + `model.safetensors` (f32, ~478 MB, from save_pretrained) and
`cases/<case>.safetensors` in the same format as generate_fixtures.py. Nothing here is meant
to be committed; point the ignored Rust test at it with CHRONOS2_REAL_REFERENCE=DIR.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import QUANTILES, Case, build_model, rerandomize, run_case, write_case  # noqa: E402

REAL_CHRONOS_CONFIG = {
    "context_length": 8192,
    "input_patch_size": 16,
    "input_patch_stride": 16,
    "output_patch_size": 16,
    "quantiles": list(QUANTILES),
    "use_reg_token": True,
    "use_arcsinh": True,
    "max_output_patches": 64,
    "time_encoding_scale": 8192,
}


def build_cases(seed: int) -> list[Case]:
    rng = np.random.default_rng(seed + 1000)
    cases = []

    t = np.arange(512)
    x = 100 + 10 * np.sin(2 * np.pi * t / 24) + 0.05 * t + rng.standard_normal(512)
    cases.append(Case("single_512", "one series of length 512 (daily-seasonal + trend + noise), M=1",
                      np.asarray(x, np.float32)[None], np.zeros(1, np.int64), 1))

    close = 30000 + np.cumsum(rng.normal(0, 120, 700))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 80, (2, 700)))
    high = np.maximum(open_, close) + spread[0]
    low = np.minimum(open_, close) - spread[1]
    ohlc = np.stack([open_, high, low, close])
    for r in range(4):
        ohlc[r, rng.choice(700, size=5, replace=False)] = np.nan
    cases.append(Case("ohlc_group", "one group of 4 OHLC-like rows of length 700 with 5 NaNs each, M=4",
                      ohlc.astype(np.float32), np.zeros(4, np.int64), 4))

    T, F = 300, 30
    cov = 5 * np.sin(2 * np.pi * np.arange(T + F) / 50) + rng.standard_normal(T + F)
    a = 20 + np.cumsum(rng.standard_normal(T))
    b = 3 * cov[:T] + 0.5 * rng.standard_normal(T) + 50
    context = np.stack([a, b, cov[:T]])
    context[1:, :80] = np.nan  # rows 1 and 2 are shorter (220 values) via leading NaNs
    future = np.full((3, F), np.nan)
    future[2] = cov[T:]
    cases.append(Case("mixed_covariates",
                      "3 rows of length 300: target (group 0); target + known-future covariate (group 1, "
                      "80 leading NaNs each); F=30, M=2",
                      context.astype(np.float32), np.array([0, 1, 1], np.int64), 2,
                      future_covariates=future.astype(np.float32)))
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=0, help="torch seed of the init (and numpy seed of the data)")
    ap.add_argument("--rerandomize", action="store_true",
                    help="re-draw the weights with O(1) gains (seed+1), as for tiny-random, in f32")
    args = ap.parse_args()

    t0 = time.perf_counter()
    model = build_model(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
                        chronos_config=REAL_CHRONOS_CONFIG, seed=args.seed)
    if args.rerandomize:
        rerandomize(model, seed=args.seed + 1)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"built {n_params} parameters in {time.perf_counter() - t0:.1f}s "
          f"({'re-randomised' if args.rerandomize else 'default init'}, seed {args.seed}, "
          f"{torch.get_num_threads()} threads)")

    os.makedirs(args.dir, exist_ok=True)
    cases_dir = os.path.join(args.dir, "cases")
    if os.path.isdir(cases_dir):
        shutil.rmtree(cases_dir)
    t0 = time.perf_counter()
    model.save_pretrained(args.dir)
    print(f"saved checkpoint to {args.dir} in {time.perf_counter() - t0:.1f}s")

    name = os.path.basename(os.path.normpath(args.dir))
    for case in build_cases(args.seed):
        run_case(model, case)  # warm-up, so the printed time is steady-state
        tensors = run_case(model, case)
        write_case(os.path.join(cases_dir, f"{case.name}.safetensors"), tensors, name, case)
        b, t = case.context.shape
        print(f"  {case.name:<18} B={b} T={t} M={case.num_output_patches} "
              f"max|out| = {case.results['max_abs']:.6g}  reference forward {case.results['seconds'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
