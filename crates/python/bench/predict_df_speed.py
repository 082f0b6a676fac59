"""predict_df speed: through Python, through the Rust library alone, and (optionally) through
the reference `chronos.Chronos2Pipeline.predict_df`, on the same checkpoint and series.

    python crates/python/bench/predict_df_speed.py MODEL_DIR --rust target/release/examples/overhead \
        [--reference-python /path/to/venv-with-chronos/bin/python] [--series 32 --length 512 --horizon 16]

Each figure is the median of --runs calls after one warm-up call.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE = """
import statistics, sys, time
import pandas as pd, torch
from chronos import Chronos2Pipeline
model, data, horizon, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
pipeline = Chronos2Pipeline.from_pretrained(model, device_map="cpu")
df = pd.read_csv(data, parse_dates=["timestamp"])
times = []
for _ in range(runs + 1):
    started = time.perf_counter()
    pipeline.predict_df(df, prediction_length=horizon, quantile_levels=[0.1, 0.5, 0.9])
    times.append(time.perf_counter() - started)
print(statistics.median(times[1:]))
"""


def frame(series: int, length: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = pd.date_range("2020-01-01", periods=length, freq="D")
    parts = []
    for i in range(series):
        values = 100 + np.cumsum(rng.normal(0, 1, length)) + 5 * np.sin(np.arange(length) / (3 + i))
        parts.append(pd.DataFrame({"item_id": f"S{i:02d}", "timestamp": t, "target": values.astype(np.float32)}))
    return pd.concat(parts, ignore_index=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--rust", required=True, help="the built `overhead` example")
    parser.add_argument("--reference-python", help="an interpreter with chronos-forecasting and torch")
    parser.add_argument("--series", type=int, default=32)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--horizon", type=int, default=16)
    parser.add_argument("--mode", default="compiled")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from chronos2 import Chronos2Pipeline

    df = frame(args.series, args.length)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "series.csv"
        df.to_csv(data, index=False)
        pipeline = Chronos2Pipeline.from_pretrained(args.model, mode=args.mode, threads=args.threads)
        times = []
        for _ in range(args.runs + 1):
            started = time.perf_counter()
            pipeline.predict_df(df, prediction_length=args.horizon, quantile_levels=[0.1, 0.5, 0.9])
            times.append(time.perf_counter() - started)
        python = statistics.median(times[1:])
        rust = float(subprocess.check_output(
            [args.rust, args.model, str(data), str(args.horizon), args.mode, str(args.threads), str(args.runs)],
            text=True,
        ))
        print(f"{args.series} series x {args.length} steps, horizon {args.horizon}, {args.mode}, "
              f"{args.threads} threads, median of {args.runs}")
        print(f"rust library   {rust * 1e3:9.1f} ms")
        print(f"python         {python * 1e3:9.1f} ms   overhead {100 * (python / rust - 1):+.1f} %")
        if args.reference_python:
            reference = float(subprocess.check_output(
                [args.reference_python, "-c", REFERENCE, args.model, str(data), str(args.horizon),
                 str(args.threads), str(args.runs)],
                text=True,
            ))
            print(f"reference      {reference * 1e3:9.1f} ms   python is {reference / python:.2f}x faster")


if __name__ == "__main__":
    sys.exit(main())
