#!/usr/bin/env python3
"""Writes the memory case of the reader: 5,000,000 one-minute OHLCV bars (about 290 MB) as CSV.

    python3 bench/make-5m-rows.py /work/tmp/bars-5m.csv
    /usr/bin/time -v chronos2 forecast --data /work/tmp/bars-5m.csv --context 512 --horizon 16

The walk is deterministic (seeded), so every run writes the same file.
"""
import datetime as dt
import random
import sys

ROWS = 5_000_000


def main(path: str) -> None:
    rng = random.Random(16)
    t = dt.datetime(2015, 1, 1)
    step = dt.timedelta(minutes=1)
    price = 1.10523
    with open(path, "w", buffering=1 << 20) as out:
        out.write("timestamp,open,high,low,close,volume\n")
        for _ in range(ROWS):
            close = max(0.5, price + rng.gauss(0.0, 0.0002))
            high = max(price, close) + abs(rng.gauss(0.0, 0.0001))
            low = min(price, close) - abs(rng.gauss(0.0, 0.0001))
            out.write(f"{t:%Y-%m-%d %H:%M:%S},{price:.5f},{high:.5f},{low:.5f},{close:.5f},{rng.randint(1, 5000)}\n")
            price = close
            t += step


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/tmp/bars-5m.csv")
