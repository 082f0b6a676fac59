#!/usr/bin/env python3
"""PyTorch eager and torch.compile(mode="reduce-overhead") latency of Chronos-2 on a GPU, on the
same checkpoint and the same shapes as `chronos2 bench --device cuda` (cases A, C, E, F), for
the table tools/gpu/check.sh prints.

Needs torch with CUDA and chronos-forecasting (`pip install chronos-forecasting`); without them
it prints one line saying what is missing and exits 0, so the Rust part of the check still
stands. Output: one JSON object per line (`{"engine", "dtype", "case", "first_ms",
"median_ms", "series_per_s"}`).

Usage: torch_bench.py CHECKPOINT_DIR [--runs 20] [--dtypes float32,bfloat16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

# The cases of `chronos2 bench` (crates/bench: shape_case): rows, context, horizon, one group.
CASES = {"A": (1, 512, 16, False), "C": (32, 512, 16, False), "E": (256, 512, 16, False), "F": (256, 512, 16, True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cases", default="A,C,E,F")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    try:
        import torch
        from chronos.chronos2 import Chronos2Model
    except ImportError as e:
        print(f"skipped: PyTorch part needs torch and chronos-forecasting ({e})", file=sys.stderr)
        return 0
    if not torch.cuda.is_available():
        print("skipped: torch sees no CUDA GPU", file=sys.stderr)
        return 0
    device = torch.device("cuda:0")
    # The same arithmetic as our f32 path: no TF32 in matmuls or convolutions.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    gpu = torch.cuda.get_device_name(device)
    for dtype_name in args.dtypes.split(","):
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype_name]
        model = Chronos2Model.from_pretrained(args.checkpoint, dtype=dtype).to(device).eval()
        engines = [("torch eager", model)]
        try:
            engines.append(("torch.compile reduce-overhead", torch.compile(model, mode="reduce-overhead")))
        except Exception as e:  # noqa: BLE001 - report and go on with eager
            print(f"torch.compile unavailable: {e}", file=sys.stderr)
        for name, runner in engines:
            for case in args.cases.split(","):
                rows, context, horizon, grouped = CASES[case]
                # The synthetic series of `chronos2 bench` (ShapeCase::input).
                t = torch.arange(context, dtype=torch.float32)
                r = torch.arange(rows, dtype=torch.float32)[:, None]
                values = 100.0 + torch.sin((t + 13 * r) * 0.05) * 3.0 + t * 0.01
                group_ids = torch.zeros(rows, dtype=torch.long) if grouped else torch.arange(rows)
                kwargs = dict(
                    context=values.to(device),
                    group_ids=group_ids.to(device),
                    num_output_patches=-(-horizon // 16),
                )
                times = []
                with torch.no_grad():
                    for _ in range(args.runs + 3):
                        torch.cuda.synchronize()
                        started = time.perf_counter()
                        runner(**kwargs)
                        torch.cuda.synchronize()
                        times.append((time.perf_counter() - started) * 1e3)
                steady = times[3:]
                median = statistics.median(steady)
                print(json.dumps({
                    "engine": name, "dtype": dtype_name, "case": case, "gpu": gpu,
                    "first_ms": round(times[0], 2), "median_ms": round(median, 3),
                    "series_per_s": round(rows / (median / 1e3), 1),
                }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
