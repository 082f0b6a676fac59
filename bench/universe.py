#!/usr/bin/env python3
"""Generate a universe of synthetic daily OHLC files for `chronos2 backtest` (the
scale check: 500 symbols x 600 bars, then 100 windows with every strategy).

    python3 bench/universe.py --out /tmp/universe --symbols 500 --bars 600
    cargo run --release -- backtest --data '/tmp/universe/*.csv' --target ohlc --windows 100 \
        --out /tmp/universe-out

Each symbol is a geometric random walk (seeded by its index, so runs are reproducible) with
a symbol-specific drift and volatility; opens, highs and lows are drawn around the closes so
that low <= open, close <= high. Crypto-like calendar: every day from 2023-01-01.
"""

import argparse
import datetime
import math
import os
import random


def write_symbol(path: str, index: int, bars: int) -> None:
    rng = random.Random(index)
    drift = rng.uniform(-0.0005, 0.001)
    vol = rng.uniform(0.01, 0.04)
    close = rng.uniform(5.0, 500.0)
    day = datetime.date(2023, 1, 1)
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(bars):
        open_ = close * math.exp(rng.gauss(0.0, vol / 4))
        close = open_ * math.exp(drift + rng.gauss(0.0, vol))
        high = max(open_, close) * math.exp(abs(rng.gauss(0.0, vol / 2)))
        low = min(open_, close) * math.exp(-abs(rng.gauss(0.0, vol / 2)))
        date = day + datetime.timedelta(days=i)
        lines.append(f"{date.isoformat()},{open_:.6f},{high:.6f},{low:.6f},{close:.6f},{rng.randint(1000, 99999)}")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for SYM0000.csv ... (created)")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=600)
    args = parser.parse_args()
    if args.symbols < 1 or args.bars < 3:
        parser.error("--symbols must be at least 1 and --bars at least 3")
    os.makedirs(args.out, exist_ok=True)
    for i in range(args.symbols):
        write_symbol(os.path.join(args.out, f"SYM{i:04d}.csv"), i, args.bars)
    print(f"wrote {args.symbols} files of {args.bars} bars to {args.out}")


if __name__ == "__main__":
    main()
