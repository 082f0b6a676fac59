"""`chronos2.backtest`: `chronos2 backtest` from Python, on a file or a DataFrame."""

from __future__ import annotations

import io
import json
import os
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from . import _native
from ._pipeline import Chronos2Pipeline


class BacktestResult(NamedTuple):
    """What :func:`backtest` returns (unpacks as ``report, forecasts, trades``)."""

    report: dict
    """Every figure of the CLI's report.json (options, per-series metrics, baselines,
    Diebold-Mariano, strategies, timing)."""
    forecasts: pd.DataFrame
    """One row per window and step, named as ``forecasts.csv`` names them: ``series``,
    ``origin_time`` (time of the origin bar), ``target_time`` (time of the forecast bar),
    ``step``, ``bar``, ``actual``, ``median``, ``0.1`` .. ``0.9`` (the quantile levels, as
    ``predict_df`` names them), ``naive``, ``seasonal_naive``, ``drift``."""
    trades: pd.DataFrame
    """One row per round trip: ``series``, ``strategy``, ``entry_time``, ``exit_time``,
    ``entry_bar``, ``exit_bar``, ``direction``, ``net_return``, ``pnl``, ``costs``."""


def _csv_of(df: pd.DataFrame) -> bytes:
    """A frame as the CSV text the CLI would read: a datetime (or named) index is written as
    a column, a default integer index is not."""
    keep_index = isinstance(df.index, pd.DatetimeIndex) or df.index.name is not None
    buffer = io.StringIO()
    df.to_csv(buffer, index=keep_index)
    return buffer.getvalue().encode()


def _times(seconds: list) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(seconds, dtype="int64"), unit="s")


def _forecast_frame(report: dict, times: dict) -> pd.DataFrame:
    columns: dict = {k: [] for k in ("series", "origin_time", "target_time", "step", "bar", "actual", "median")}
    level_names = [f"{float(np.float32(level)):g}" for level in _native.BACKTEST_LEVELS]
    for name in [*level_names, "naive", "seasonal_naive", "drift"]:
        columns[name] = []
    for series in report["series"]:
        bars = times[series["label"]]
        for w in series["windows"]:
            for k, actual in enumerate(w["actual"]):
                columns["series"].append(series["label"])
                columns["origin_time"].append(bars[w["origin"]])
                columns["step"].append(k + 1)
                columns["target_time"].append(bars[w["origin"] + k])
                columns["bar"].append(w["origin"] + k)
                columns["actual"].append(actual)
                columns["median"].append(w["median"][k])
                for name, values in zip(level_names, w["quantiles"]):
                    columns[name].append(values[k])
                for name in ("naive", "seasonal_naive", "drift"):
                    columns[name].append(w[name][k])
    frame = pd.DataFrame(columns)
    for name in ("origin_time", "target_time"):
        frame[name] = _times(frame[name].to_numpy(dtype="int64"))
    return frame.astype({c: "float64" for c in frame.columns[5:]})


def _trade_frame(report: dict, times: dict) -> pd.DataFrame:
    rows = []
    for series in report["series"]:
        bars = times[series["label"]]
        for strategy in series["strategies"]:
            for t in strategy["path"]["trades"]:
                rows.append(
                    {
                        "series": series["label"],
                        "strategy": strategy["name"],
                        "entry_time": bars[t["entry_bar"]],
                        "exit_time": bars[t["exit_bar"]],
                        "entry_bar": t["entry_bar"],
                        "exit_bar": t["exit_bar"],
                        "direction": t["direction"],
                        "net_return": t["net_return"],
                        "pnl": t["pnl"],
                        "costs": t["costs"],
                    }
                )
    columns = ["series", "strategy", "entry_time", "exit_time", "entry_bar", "exit_bar", "direction",
               "net_return", "pnl", "costs"]
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("entry_time", "exit_time"):
        frame[name] = _times(frame[name].to_numpy(dtype="int64"))
    return frame.astype({"entry_bar": "int64", "exit_bar": "int64", "direction": "int64"})


def backtest(
    data: "pd.DataFrame | str | os.PathLike",
    *,
    pipeline: Chronos2Pipeline | None = None,
    model: str | None = None,
    mode: str | None = None,
    threads: int | None = None,
    target: str = "close",
    context: int = 512,
    horizon: int = 7,
    windows: int = 100,
    step: int = 1,
    first_origin: "int | str | None" = None,
    season: "int | None" = None,
    periods_per_year: "float | None" = None,
    trade_step: int = 1,
    threshold: float = 0.005,
    interval: tuple = (0.1, 0.9),
    long_only: bool = False,
    strategies: "list | None" = None,
    fraction: float = 1.0,
    fee_bps: float = 10.0,
    slippage_bps: float = 5.0,
    spread_bps: float = 0.0,
    fill_at: str = "close",
    strict: bool = False,
    batch_size: int = 256,
    id_column: str | None = None,
    fill: str = "none",
    keep_last: bool = False,
    name: str = "dataframe",
    out: "str | os.PathLike | None" = None,
) -> BacktestResult:
    """Walk-forward backtest, exactly ``chronos2 backtest`` (same engine, same options with
    the same defaults, same report).

    ``data``: a CSV (or Parquet) path, or a DataFrame of bars read like that file (a time
    column or a DatetimeIndex, ``open``/``high``/``low``/``close`` in any case, optionally an
    id column for several series). ``pipeline``: a loaded :class:`Chronos2Pipeline` to reuse;
    otherwise ``model`` (default: the built-in model), ``mode`` and ``threads`` load one.
    ``name`` labels a DataFrame in the report. ``out``: also write the CLI's files there
    (report.json, forecasts.csv, trades.csv, summary.csv, portfolio.csv, report.html), as
    its ``--out``. ``target`` is ``"close"``, any column (``"Adj Close"``) or ``"ohlc"``;
    ``strategies`` a list of the CLI's strategy names (default: every one the target can run);
    ``long_only`` is ``--no-short``; ``spread_bps``, ``fill_at`` (``"close"`` or
    ``"next-open"``), ``season`` (``None``: by calendar), ``periods_per_year`` (``None``:
    measured per symbol, as the CLI's ``--periods-per-year``) and ``strict`` are the CLI's flags.

    Returns :class:`BacktestResult` ``(report, forecasts, trades)``. Raises ``ValueError``
    for a setup that does not fit the data (with the CLI's message),
    ``FileNotFoundError`` for a missing file.
    """
    if pipeline is None:
        pipeline = Chronos2Pipeline.from_pretrained(model, mode=mode, threads=threads)
    elif model is not None or mode is not None or threads is not None:
        raise ValueError("pass either pipeline= or model=/mode=/threads=, not both")
    if not (isinstance(interval, (tuple, list)) and len(interval) == 2):
        raise ValueError(f"interval must be two quantile levels like (0.1, 0.9), found {interval!r}")
    args: dict[str, Any] = dict(
        target=target, context=context, horizon=horizon, windows=windows, step=step,
        first_origin=first_origin, season=season,
        periods_per_year=None if periods_per_year is None else float(periods_per_year),
        trade_step=trade_step, threshold=float(threshold),
        interval=(float(interval[0]), float(interval[1])), long_only=bool(long_only),
        strategies=[str(s) for s in (strategies or [])], fraction=float(fraction), fee_bps=float(fee_bps),
        slippage_bps=float(slippage_bps), spread_bps=float(spread_bps), fill_at=str(fill_at), strict=bool(strict),
        batch_size=batch_size, id_column=id_column, fill=fill, keep_last=bool(keep_last),
    )
    for key in ("context", "horizon", "windows", "step", "season", "trade_step", "batch_size"):
        if key == "season" and args[key] is None:
            continue
        if isinstance(args[key], bool) or not isinstance(args[key], (int, np.integer)) or args[key] < 0:
            raise ValueError(f"{key} must be a non-negative integer, found {args[key]!r}")
        args[key] = int(args[key])
    if isinstance(first_origin, bool) or (isinstance(first_origin, (int, np.integer)) and first_origin < 0):
        raise ValueError(f"first_origin must be a bar index (>= 0) or a date, found {first_origin!r}")
    if isinstance(first_origin, np.integer):
        args["first_origin"] = int(first_origin)
    out = None if out is None else os.fspath(out)
    if isinstance(data, pd.DataFrame):
        report_json, times = _native.backtest(
            pipeline._native, args, csv=_csv_of(data), name=f"{name}.csv", out=out
        )
    elif isinstance(data, (str, os.PathLike)):
        report_json, times = _native.backtest(pipeline._native, args, path=os.fspath(data), out=out)
    else:
        raise TypeError(f"data must be a DataFrame or a file path, found {type(data).__name__}")
    report = json.loads(report_json)
    times = dict(times)
    return BacktestResult(report, _forecast_frame(report, times), _trade_frame(report, times))
