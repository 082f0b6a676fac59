#!/usr/bin/env python3
"""Forecast and backtest a universe of symbols on a Ray cluster of two simulated nodes.

Generates 2,000 symbols x 600 daily OHLC bars (geometric random walks), writes them as Parquet
files, reads them with ``ray.data.read_parquet``, then runs ``chronos2.ray.forecast_dataset`` and
``backtest_dataset`` on a local ``ray.cluster_utils.Cluster`` with two nodes, prints throughput
and the portfolio summary, and with ``--check N`` compares N symbols with one process::

    pip install "./crates/python[ray]"
    python examples/ray_universe.py                                   # 2,000 x 600, built-in model
    python examples/ray_universe.py --symbols 200 --check 200 --out /tmp/universe-out

Ray binds its services to the machine's network address even for a local cluster; to keep
them off the network, run it where loopback is the only interface (as root)::

    unshare -n sh -c 'ip link set lo up; python examples/ray_universe.py'
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import ray
from ray.cluster_utils import Cluster

from chronos2 import Chronos2Pipeline, backtest
from chronos2.ray import backtest_dataset, forecast_dataset, portfolio_summary, symbol_rows

LEVELS = [0.1, 0.5, 0.9]


def universe(symbols: int, bars: int, seed: int = 0) -> pd.DataFrame:
    """``symbols`` daily OHLC random walks of ``bars`` bars from 2023-01-01 (every day, as
    crypto trades), each with its own drift and volatility; low <= open, close <= high."""
    rng = np.random.default_rng(seed)
    drift = rng.uniform(-0.0005, 0.001, (symbols, 1))
    vol = rng.uniform(0.01, 0.04, (symbols, 1))
    start = rng.uniform(5.0, 500.0, (symbols, 1))
    close = start * np.exp(np.cumsum(drift + vol * rng.standard_normal((symbols, bars)), axis=1))
    open_ = close * np.exp(vol / 4 * rng.standard_normal((symbols, bars)))
    wick = np.exp(np.abs(vol / 2 * rng.standard_normal((2, symbols, bars))))
    return pd.DataFrame({
        "symbol": np.repeat([f"SYM{i:05d}" for i in range(symbols)], bars),
        "timestamp": np.tile(pd.date_range("2023-01-01", periods=bars, freq="D").to_numpy(), symbols),
        "open": open_.ravel(),
        "high": (np.maximum(open_, close) * wick[0]).ravel(),
        "low": (np.minimum(open_, close) / wick[1]).ravel(),
        "close": close.ravel(),
    })


def write_parquet_files(frame: pd.DataFrame, directory: Path, files: int) -> None:
    """The universe as ``files`` Parquet files of whole symbols."""
    names = pd.unique(frame["symbol"])
    for i, chosen in enumerate(np.array_split(names, files)):
        frame[frame["symbol"].isin(chosen)].to_parquet(directory / f"part-{i:03d}.parquet", index=False)


def start_cluster(nodes: int, cpus: int, store_mb: int) -> Cluster:
    """A local cluster of ``nodes`` simulated nodes (separate raylets on this machine)."""
    node = dict(num_cpus=cpus, object_store_memory=store_mb * 1024 * 1024)
    cluster = Cluster(initialize_head=True, head_node_args=dict(node, include_dashboard=False))
    for _ in range(nodes - 1):
        cluster.add_node(**node)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    return cluster


def check(frame: pd.DataFrame, forecasts: pd.DataFrame, results: pd.DataFrame, n: int, args) -> bool:
    """Compares the first ``n`` symbols with one process (``predict_df`` and ``backtest`` on
    their rows); prints how many are equal within 1e-6 relative."""
    chosen = pd.unique(frame["symbol"])[:n]
    rows = frame[frame["symbol"].isin(chosen)]
    pipeline = Chronos2Pipeline.from_pretrained(args.model, mode=args.mode, threads=1)
    expected = pipeline.predict_df(rows, id_column="symbol", target="close",
                                   prediction_length=args.horizon, quantile_levels=LEVELS)
    got = forecasts[forecasts["symbol"].isin(chosen)].drop(columns="error")
    columns = ["predictions", *map(str, LEVELS)]
    both = _keyed(expected).merge(_keyed(got), on=["symbol", "timestamp"], how="outer", suffixes=("", "_ray"),
                                  indicator=True)
    close = np.isclose(both[[f"{c}_ray" for c in columns]].to_numpy(float), both[columns].to_numpy(float),
                       rtol=1e-6, atol=0).all(axis=1) & (both["_merge"] == "both").to_numpy()
    forecast_equal = pd.Series(close).groupby(both["symbol"].to_numpy()).all()

    single = symbol_rows(backtest(rows, pipeline=pipeline, id_column="symbol", **backtest_options(args)), chosen)
    single = single.set_index("symbol").sort_index()
    ray_rows = results[results["symbol"].isin(chosen)].set_index("symbol").sort_index()
    numbers = [c for c in single.columns if c not in ("error", "trades")]
    same = np.isclose(ray_rows[numbers].to_numpy(float), single[numbers].to_numpy(float), rtol=1e-6, atol=0,
                      equal_nan=True).all(axis=1)
    n_forecast = int(forecast_equal.sum())
    n_backtest = int(same.sum()) if ray_rows.index.equals(single.index) else 0
    print(f"equal to one process: forecasts {n_forecast}/{len(chosen)} symbols, "
          f"backtests {n_backtest}/{len(chosen)} symbols")
    return n_forecast == n_backtest == len(chosen)


def _keyed(forecast: pd.DataFrame) -> pd.DataFrame:
    """A forecast frame with plain ``symbol`` and ``timestamp`` keys (Parquet and Arrow may
    change their dtypes)."""
    return forecast.assign(symbol=forecast["symbol"].astype(str),
                           timestamp=pd.to_datetime(forecast["timestamp"]).astype("datetime64[ns]"))


def backtest_options(args) -> dict:
    return dict(context=args.context, horizon=args.horizon, windows=args.windows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--bars", type=int, default=600)
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--context", type=int, default=256, help="backtest context (bars)")
    parser.add_argument("--windows", type=int, default=20, help="backtest windows per symbol")
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--mode", default="compiled", choices=["eager", "compiled"])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--cpus-per-node", type=int, default=2, help="logical CPUs of each simulated node")
    parser.add_argument("--store-mb", type=int, default=200, help="object store of each node (MB)")
    parser.add_argument("--check", type=int, default=0, metavar="N", help="compare N symbols with one process")
    parser.add_argument("--out", type=Path,
                        help="write forecasts/ and backtests/ there as Parquet (a new or empty directory)")
    args = parser.parse_args()
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"--out {args.out} is not empty; choose a new directory so that nothing is overwritten")

    frame = universe(args.symbols, args.bars)
    cluster = start_cluster(args.nodes, args.cpus_per_node, args.store_mb)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            write_parquet_files(frame, Path(tmp), files=max(1, min(16, args.symbols // 100)))
            bars = ray.data.read_parquet(tmp)
            print(f"universe: {args.symbols} symbols x {args.bars} bars on {args.nodes} nodes x "
                  f"{args.cpus_per_node} CPUs")
            started = time.perf_counter()
            forecasts_ds = forecast_dataset(bars, model=args.model, mode=args.mode, id_column="symbol",
                                            target="close", prediction_length=args.horizon,
                                            quantile_levels=LEVELS).materialize()
            seconds = time.perf_counter() - started
            print(f"forecast: {args.symbols} series in {seconds:.1f} s = {args.symbols / seconds:.1f} series/s")
            started = time.perf_counter()
            results_ds = backtest_dataset(bars, model=args.model, mode=args.mode, id_column="symbol",
                                          **backtest_options(args)).materialize()
            seconds = time.perf_counter() - started
            windows = args.symbols * args.windows
            print(f"backtest: {args.symbols} series x {args.windows} windows in {seconds:.1f} s = "
                  f"{args.symbols / seconds:.1f} series/s ({windows / seconds:.0f} windows/s)")
            if args.out is not None:
                forecasts_ds.write_parquet(str(args.out / "forecasts"))
                results_ds.write_parquet(str(args.out / "backtests"))
                print(f"written: {args.out}/forecasts, {args.out}/backtests (Parquet)")
            forecasts, results = forecasts_ds.to_pandas(), results_ds.to_pandas()
        summary = portfolio_summary(results)
        print(f"completed {summary['completed']}/{summary['symbols']} symbols; failed: {summary['failed'] or 'none'}")
        if "forecast" in summary:
            print(f"MASE mean {summary['forecast']['mase_mean']:.3f}, beats naive on "
                  f"{summary['forecast']['beats_naive_share']:.0%} of symbols")
            for name, s in summary["strategies"].items():
                print(f"  {name:<14} portfolio return {s['total_return']:+.2%}, {s['trades']} trades, "
                      f"win rate {s['win_rate']:.0%}, best {s['best'][0]} {s['best'][1]:+.1%}")
        ok = check(frame, forecasts, results, args.check, args) if args.check else True
    finally:
        ray.shutdown()
        cluster.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
