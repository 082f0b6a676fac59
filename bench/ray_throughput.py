#!/usr/bin/env python3
"""Series per second: one process (`predict_df`, 1 and 2 threads) against `chronos2.ray`
with 1 and 2 one-CPU workers, on the same generated universe (examples/ray_universe.py's).

    python bench/ray_throughput.py --model DIR --symbols 400 --bars 600    # real-size checkpoint
    python bench/ray_throughput.py --symbols 2000                          # built-in model

The Ray figures include what every job pays: the shuffle that gathers each symbol's rows and
the actors' start (process, model load). Ray runs on one node with 3 logical CPUs (each worker
takes one, Ray Data's own tasks the third). Run it as root inside a private network namespace:
`unshare -n sh -c 'ip link set lo up; python bench/ray_throughput.py ...'`. Measure on a quiet
machine; say so when it was shared.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import ray

from chronos2 import Chronos2Pipeline
from chronos2.ray import forecast_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from ray_universe import universe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--mode", default="compiled", choices=["eager", "compiled"])
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--bars", type=int, default=600)
    parser.add_argument("--horizon", type=int, default=7)
    args = parser.parse_args()
    frame = universe(args.symbols, args.bars)
    predict = dict(id_column="symbol", target="close", prediction_length=args.horizon)
    rows = []
    for threads in (1, 2):
        pipeline = Chronos2Pipeline.from_pretrained(args.model, mode=args.mode, threads=threads)
        started = time.perf_counter()
        pipeline.predict_df(frame, **predict)
        rows.append((f"one process, {threads} thread{'s' if threads > 1 else ''}", time.perf_counter() - started))
    ray.init(num_cpus=3, object_store_memory=400 * 1024 * 1024, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        for workers in (1, 2):
            ds = ray.data.from_pandas(frame)
            started = time.perf_counter()
            out = forecast_dataset(ds, model=args.model, mode=args.mode, workers=workers, num_cpus=1,
                                   symbols_per_batch=256, **predict).materialize()
            seconds = time.perf_counter() - started
            assert out.count() == args.symbols * args.horizon
            rows.append((f"Ray, {workers} worker{'s' if workers > 1 else ''} x 1 CPU", seconds))
    finally:
        ray.shutdown()
    print(f"{args.symbols} symbols x {args.bars} bars, horizon {args.horizon}, model {args.model} ({args.mode})\n")
    print("| run | seconds | series/s |\n|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {args.symbols / seconds:.1f} |")


if __name__ == "__main__":
    main()
