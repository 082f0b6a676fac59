"""`chronos2.ray`: forecasts and backtests of a whole universe of symbols on a Ray cluster.

Ray Data runs the work; this module only arranges it. The rows of each symbol are gathered
into one group (``Dataset.groupby(id_column).map_groups``), so a series is never split between
workers; a pool of actors, each holding one model loaded once with as many threads as its
``num_cpus``, takes many symbols per call and runs the package's own
:meth:`Chronos2Pipeline.predict_df` or :func:`chronos2.backtest` on them::

    import ray
    from chronos2.ray import backtest_dataset, forecast_dataset, portfolio_summary

    ray.init()
    bars = ray.data.read_parquet("bars/")             # symbol, timestamp, open, high, low, close
    forecast_dataset(bars, id_column="symbol", target="close", prediction_length=7,
                     workers=4, num_cpus=8).write_parquet("forecasts/")
    results = backtest_dataset(bars, id_column="symbol", context=512, horizon=7, windows=250,
                               workers=4, num_cpus=8).materialize()
    print(portfolio_summary(results))

Every output row carries an ``error`` column: ``None`` where the symbol was computed; a symbol
whose data the model or the backtest refuses gets one row with its id and the message, and
the other symbols of its batch are still computed (the batch is split until the bad symbol is
alone). A worker process that dies is restarted by Ray and its batch run again, so every symbol
comes out exactly once.

Ray Data needs CPUs for its own read and shuffle tasks besides the actors: the pool may take
at most the cluster's CPUs minus one (``workers * num_cpus``), else the job would stall.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import ray
import ray.data

from ._backtest import backtest
from ._pipeline import DEFAULT_LEVELS, Chronos2Pipeline, _positive

ERROR_COLUMN = "error"
"""The column that names what went wrong for a symbol (``None`` where it was computed)."""

_PAYLOAD = "__chronos2_rows"
"""The column that carries one symbol's rows (an Arrow IPC stream) from the shuffle to the actors."""

_BACKTEST_OWN = ("pipeline", "model", "mode", "threads", "id_column", "name", "out")
"""Arguments of :func:`chronos2.backtest` that :func:`backtest_dataset` sets itself."""

BatchHook = Callable[[list], None]
"""What ``on_batch`` is: called in the worker with the symbols of each batch before it runs."""


def forecast_dataset(
    ds: ray.data.Dataset,
    *,
    model: Optional[str] = None,
    id_column: str = "item_id",
    timestamp_column: str = "timestamp",
    target: "str | list" = "target",
    prediction_length: Optional[int] = None,
    quantile_levels: Sequence[float] = DEFAULT_LEVELS,
    mode: Optional[str] = None,
    dtype: Any = None,
    compile_mode: Optional[str] = None,
    batch_size: int = 256,
    context_length: Optional[int] = None,
    cross_learning: bool = False,
    freq: Optional[str] = None,
    symbols_per_batch: int = 256,
    workers: Optional[int] = None,
    num_cpus: int = 1,
    partitions: Optional[int] = None,
    on_batch: Optional[BatchHook] = None,
) -> ray.data.Dataset:
    """Forecasts every series of a long-format Ray Dataset, as
    :meth:`Chronos2Pipeline.predict_df` does on a DataFrame.

    ``ds``: one row per (``id_column``, ``timestamp_column``) with the ``target`` column(s);
    from ``ray.data.read_parquet`` / ``read_csv`` or any Ray Dataset, rows in any order.
    ``model``, ``mode``, ``dtype``, ``compile_mode``: as :meth:`Chronos2Pipeline.from_pretrained`
    (the model must be readable on every node). ``prediction_length``, ``quantile_levels``,
    ``batch_size`` (series per model call), ``context_length``, ``cross_learning`` (within a
    batch of symbols), ``freq``: as ``predict_df``.

    ``symbols_per_batch``: symbols per ``predict_df`` call; ``workers``: actors (default: as
    many as fit, leaving one CPU to Ray Data); ``num_cpus``: CPUs per actor, which is also its
    engine's thread count; ``partitions``: groups of symbols the shuffle makes (default
    ``4 * workers``; each is cut into batches of ``symbols_per_batch``); ``on_batch``: called in
    the worker with each batch's symbols before it runs (progress, fault-injection tests).

    Returns a lazy Dataset with ``predict_df``'s columns (``id_column``, ``timestamp_column``,
    ``target_name``, ``predictions``, one float32 column per level) plus ``error``. Raises
    ``ValueError`` naming the argument when one is out of range or a column is missing.
    """
    targets = list(target) if isinstance(target, (list, tuple)) else [target]
    _check_columns(ds, [id_column, timestamp_column, *targets])
    if prediction_length is not None:
        _positive(prediction_length, "prediction_length")
    levels = [float(q) for q in quantile_levels]
    if not levels or not all(0.0 < q < 1.0 for q in levels):
        raise ValueError(f"quantile_levels must be levels in (0, 1), found {list(quantile_levels)!r}")
    predict = dict(
        id_column=id_column, timestamp_column=timestamp_column, target=target,
        prediction_length=prediction_length, quantile_levels=list(quantile_levels),
        batch_size=_positive(batch_size, "batch_size"), context_length=context_length,
        cross_learning=bool(cross_learning), freq=freq,
    )
    loader = dict(model=model, mode=mode, dtype=dtype, compile_mode=compile_mode)
    job = functools.partial(_forecast, predict=predict)
    return _run(ds, dict(loader=loader, job=job, on_batch=on_batch), id_column, symbols_per_batch, workers,
                num_cpus, partitions)


def backtest_dataset(
    ds: ray.data.Dataset,
    *,
    model: Optional[str] = None,
    mode: Optional[str] = None,
    dtype: Any = None,
    compile_mode: Optional[str] = None,
    id_column: str = "symbol",
    timestamp_column: str = "timestamp",
    symbols_per_batch: int = 64,
    workers: Optional[int] = None,
    num_cpus: int = 1,
    partitions: Optional[int] = None,
    on_batch: Optional[BatchHook] = None,
    **options: Any,
) -> ray.data.Dataset:
    """Walk-forward backtests of every symbol of a Ray Dataset of bars, each exactly
    :func:`chronos2.backtest` on that symbol's rows.

    ``ds``: ``id_column``, ``timestamp_column`` and the bars (``open``/``high``/``low``/
    ``close``, any case). ``options``: :func:`chronos2.backtest`'s options (``target``,
    ``context``, ``horizon``, ``windows``, ``step``, strategy and cost settings, ...).
    ``model``, ``mode``, ``dtype``, ``compile_mode``, ``symbols_per_batch``, ``workers``,
    ``num_cpus``, ``partitions``, ``on_batch``: as :func:`forecast_dataset` (one
    :func:`chronos2.backtest` call per batch of symbols; its forecasts are batched across them).

    Returns a lazy Dataset with one row per symbol: ``id_column``, ``error``, ``windows``, the
    report's figures as float64 columns (``model_mae``, ``model_mase``, ``quantile_wql``, ...,
    ``naive_mase``, ``skill_vs_naive``, ``dm_p_value``, ``<strategy>_total_return``,
    ``<strategy>_sharpe``, ``<strategy>_trades``, ...) and ``trades`` (the symbol's rows of
    ``BacktestResult.trades`` as JSON records). :func:`portfolio_summary` and
    :func:`trades_frame` read it.
    """
    allowed = set(inspect.signature(backtest).parameters) - {"data", *_BACKTEST_OWN}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"backtest_dataset got unknown options {unknown}; chronos2.backtest takes {sorted(allowed)}")
    _check_columns(ds, [id_column, timestamp_column])
    loader = dict(model=model, mode=mode, dtype=dtype, compile_mode=compile_mode)
    job = functools.partial(_backtest, options=options, id_column=id_column, timestamp_column=timestamp_column)
    return _run(ds, dict(loader=loader, job=job, on_batch=on_batch), id_column, symbols_per_batch, workers,
                num_cpus, partitions)


def portfolio_summary(results: "ray.data.Dataset | pd.DataFrame", id_column: str = "symbol") -> dict:
    """The universe's figures from :func:`backtest_dataset`'s per-symbol rows.

    The portfolio splits its capital equally across the symbols that completed and never
    rebalances, so its return is the mean of their returns. Returns a dict:
    ``symbols``, ``completed``, ``failed`` (symbol -> error), ``forecast`` (mean and median
    MASE, mean weighted quantile loss, mean skill against the naive forecast, share of symbols
    that beat it) and, per strategy, ``total_return`` (the portfolio's), ``median_return``,
    ``profitable_share``, ``trades``, ``win_rate`` (over all trades), ``total_costs``, ``best`` and
    ``worst`` (symbol and return).
    """
    frame = results.to_pandas() if isinstance(results, ray.data.Dataset) else results
    failed_rows = frame[frame[ERROR_COLUMN].notna()]
    ok = frame[frame[ERROR_COLUMN].isna()]
    summary: dict = {
        "symbols": len(frame),
        "completed": len(ok),
        "failed": {str(s): e for s, e in zip(failed_rows[id_column], failed_rows[ERROR_COLUMN])},
    }
    if ok.empty:
        return summary
    skill = ok["skill_vs_naive"].astype(float)
    summary["forecast"] = {
        "mase_mean": float(ok["model_mase"].mean()),
        "mase_median": float(ok["model_mase"].median()),
        "wql_mean": float(ok["quantile_wql"].mean()),
        "skill_vs_naive_mean": float(skill.mean()),
        "beats_naive_share": float((skill > 0).mean()),
    }
    strategies = {}
    for column in ok.columns:
        if not column.endswith("_total_return"):
            continue
        name = column[: -len("_total_return")]
        returns = ok[column].astype(float)
        trades = ok[f"{name}_trades"].astype(float)
        wins = (ok[f"{name}_win_rate"].astype(float).fillna(0.0) * trades).sum()
        best, worst = int(np.nanargmax(returns.to_numpy())), int(np.nanargmin(returns.to_numpy()))
        strategies[name] = {
            "total_return": float(returns.mean()),
            "median_return": float(returns.median()),
            "profitable_share": float((returns > 0).mean()),
            "trades": int(trades.sum()),
            "win_rate": float(wins / trades.sum()) if trades.sum() > 0 else math.nan,
            "total_costs": float(ok[f"{name}_total_costs"].astype(float).sum()),
            "best": [str(ok[id_column].iloc[best]), float(returns.iloc[best])],
            "worst": [str(ok[id_column].iloc[worst]), float(returns.iloc[worst])],
        }
    summary["strategies"] = strategies
    return summary


def trades_frame(results: "ray.data.Dataset | pd.DataFrame") -> pd.DataFrame:
    """Every trade of :func:`backtest_dataset`'s rows as one frame, with
    ``BacktestResult.trades``' columns (``series`` holds the symbol)."""
    frame = results.to_pandas() if isinstance(results, ray.data.Dataset) else results
    records = [t for text in frame["trades"].dropna() for t in json.loads(text)]
    trades = pd.DataFrame.from_records(records)
    for name in ("entry_time", "exit_time"):
        if name in trades:
            trades[name] = pd.to_datetime(trades[name])
    return trades


# --- running the actors ---------------------------------------------------------------------


def _run(ds, worker_args: dict, id_column: str, symbols_per_batch: int, workers: Optional[int],
         num_cpus: int, partitions: Optional[int]) -> ray.data.Dataset:
    """``ds`` grouped by symbol, then :class:`_Worker` actors over batches of whole symbols, in
    a pool that Ray restarts (and whose batches it reruns) when a worker process dies."""
    symbols_per_batch = _positive(symbols_per_batch, "symbols_per_batch")
    num_cpus = _positive(num_cpus, "num_cpus")
    workers = _pool_size(workers, num_cpus)
    partitions = 4 * workers if partitions is None else _positive(partitions, "partitions")
    packed = ds.groupby(id_column, num_partitions=partitions).map_groups(
        _pack_symbol, fn_args=(id_column,), batch_format="pyarrow"
    )
    return packed.map_batches(
        _Worker,
        fn_constructor_kwargs=dict(worker_args, id_column=id_column),
        batch_size=symbols_per_batch,
        batch_format="pyarrow",
        concurrency=workers,
        num_cpus=num_cpus,
    )  # Ray Data's actor pools restart dead actors and rerun their batches (max_restarts and max_task_retries -1)


def _pool_size(workers: Optional[int], num_cpus: int) -> int:
    """The number of actors: ``workers``, checked against the cluster, or as many as fit
    beside one CPU for Ray Data's own tasks."""
    if not ray.is_initialized():
        ray.init()
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if workers is None:
        workers = max(1, (cpus - 1) // num_cpus)
    workers = _positive(workers, "workers")
    if workers * num_cpus > cpus - 1:
        raise ValueError(
            f"{workers} workers x {num_cpus} CPUs leave none of the cluster's {cpus} CPUs for Ray Data's "
            f"read and shuffle tasks, so the job would stall; use workers <= {max(1, (cpus - 1) // num_cpus)} "
            f"or give Ray more CPUs (ray.init(num_cpus={workers * num_cpus + 1}))"
        )
    return workers


def _pack_symbol(group: pa.Table, id_column: str) -> pa.Table:
    """One symbol's rows as one row: its id and its rows as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, group.schema) as writer:
        writer.write_table(group)
    return pa.table({id_column: group.column(id_column).slice(0, 1), _PAYLOAD: [sink.getvalue().to_pybytes()]})


def _unpack(batch: pa.Table, id_column: str) -> dict:
    """A batch of packed symbols as ``{symbol: Arrow table of its rows}``."""
    tables = {}
    for symbol, payload in zip(batch.column(id_column).to_pylist(), batch.column(_PAYLOAD).to_pylist()):
        tables[symbol] = pa.ipc.open_stream(payload).read_all()
    return tables


def _load(loader: dict) -> Chronos2Pipeline:
    """The model, with as many engine threads as CPUs Ray gave this actor."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return Chronos2Pipeline.from_pretrained(loader["model"], mode=loader["mode"], dtype=loader["dtype"],
                                            compile_mode=loader["compile_mode"], threads=max(1, int(cpus)))


def _isolate(symbols: list, run: Callable[[list], Any]) -> tuple:
    """``run`` on all ``symbols`` at once; where it raises, on each half, down to single
    symbols, so a bad symbol is found in about 2 log2(n) extra calls and the others still run.
    Returns ``(results, {symbol: error message})``."""
    try:
        return [run(symbols)], {}
    except Exception as error:  # noqa: BLE001 -- whatever the symbol's data caused is reported with it
        if len(symbols) == 1:
            return [], {symbols[0]: f"{type(error).__name__}: {error}"}
    half = len(symbols) // 2
    done_a, failed_a = _isolate(symbols[:half], run)
    done_b, failed_b = _isolate(symbols[half:], run)
    return done_a + done_b, {**failed_a, **failed_b}


class _Worker:
    """An actor: the model, loaded once, and the batch loop; ``job(pipeline, frame)`` computes
    the rows of some symbols (:func:`_forecast` or :func:`_backtest`)."""

    def __init__(self, loader: dict, job: Callable[[Chronos2Pipeline, pd.DataFrame], pd.DataFrame],
                 id_column: str, on_batch: Optional[BatchHook]):
        self.pipeline = _load(loader)
        self.job = job
        self.id_column = id_column
        self.on_batch = on_batch

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = _unpack(batch, self.id_column)
        symbols = list(tables)
        if self.on_batch is not None:
            self.on_batch(symbols)

        def frame_of(chosen: list) -> pd.DataFrame:
            return pa.concat_tables([tables[s] for s in chosen], promote_options="permissive").to_pandas()

        done, failed = _isolate(symbols, lambda chosen: self.job(self.pipeline, frame_of(chosen)))
        ids = batch.schema.field(self.id_column).type
        if not done:
            return pa.table({self.id_column: pa.array(list(failed), ids),
                             ERROR_COLUMN: pa.array(list(failed.values()), pa.string())})
        frame = pd.concat(done, ignore_index=True)
        errors = frame.pop(ERROR_COLUMN).astype(object) if ERROR_COLUMN in frame else [None] * len(frame)
        result = pa.Table.from_pandas(frame, preserve_index=False)
        result = result.append_column(ERROR_COLUMN, pa.array(errors, pa.string(), from_pandas=True))
        if failed:
            blank = {field.name: pa.nulls(len(failed), field.type) for field in result.schema}
            blank[self.id_column] = pa.array(list(failed), result.schema.field(self.id_column).type)
            blank[ERROR_COLUMN] = pa.array(list(failed.values()), pa.string())
            result = pa.concat_tables([result, pa.table(blank, schema=result.schema)])
        return result


def _forecast(pipeline: Chronos2Pipeline, frame: pd.DataFrame, predict: dict) -> pd.DataFrame:
    """``predict_df`` on the rows of some symbols."""
    return pipeline.predict_df(frame, **predict)


def _backtest(pipeline: Chronos2Pipeline, frame: pd.DataFrame, options: dict, id_column: str,
              timestamp_column: str) -> pd.DataFrame:
    """:func:`chronos2.backtest` on the rows of some symbols, one row of figures per symbol."""
    frame = frame.sort_values([id_column, timestamp_column], kind="stable")
    if timestamp_column != "timestamp":
        frame = frame.rename(columns={timestamp_column: "timestamp"})
    result = backtest(frame, pipeline=pipeline, id_column=id_column, **options)
    return symbol_rows(result, pd.unique(frame[id_column]), id_column)


# --- per-symbol figures ---------------------------------------------------------------------


def symbol_rows(result, symbols: Sequence, id_column: str = "symbol") -> pd.DataFrame:
    """One row of figures per symbol of a :func:`chronos2.backtest` result, as
    :func:`backtest_dataset` gives them (``symbols``: the ids, in any order, that the report's
    series labels name); a symbol the backtest skipped (too short) gets its reason in
    ``error``. Use it to compare a single-process run with a Ray run."""
    by_label = {str(s): s for s in symbols}
    rows = []
    for series in result.report["series"]:
        label = series["label"]
        trades = result.trades[result.trades["series"] == label]
        row = {id_column: by_label.pop(label, label), ERROR_COLUMN: None, "windows": len(series["windows"])}
        row.update(_series_figures(series))
        row["trades"] = trades.to_json(orient="records", date_format="iso")
        rows.append(row)
    skipped = {s.get("label"): s.get("reason") for s in result.report.get("skipped", [])}
    for label, symbol in by_label.items():  # symbols the backtest skipped: by name, with its reason
        rows.append({id_column: symbol, ERROR_COLUMN: skipped.get(label) or "no result in the backtest report"})
    return pd.DataFrame(rows)


def _series_figures(series: dict) -> dict:
    """A series' scalar figures from report.json, flat and as floats."""
    figures = {}
    for section in ("model", "quantile"):
        figures.update(_numbers(series.get(section, {}), f"{section}_"))
    for name, metrics in series.get("baselines", []):  # [name, metrics] pairs
        figures.update(_numbers(metrics, f"{name}_"))
    figures["skill_vs_naive"] = _number(series.get("skill_vs_naive"))
    figures.update(_numbers(series.get("dm_vs_naive") or {}, "dm_"))
    for strategy in series.get("strategies", []):
        figures.update(_numbers(strategy["metrics"], f"{strategy['name']}_"))
    return {k: v for k, v in figures.items() if v is not None}


def _numbers(section: dict, prefix: str) -> dict:
    return {prefix + k: _number(v) for k, v in section.items() if k != "name"}


def _number(value: Any) -> Optional[float]:
    """A report value as a float (``None`` -> NaN, ``"inf"`` -> inf); ``None`` for lists and text."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _check_columns(ds: ray.data.Dataset, needed: list) -> None:
    """A ValueError naming each needed column the dataset lacks, and the columns it has."""
    columns = ds.columns()
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ValueError(f"column {missing[0]!r} not found in the dataset (found: {', '.join(columns)}); "
                         "pass id_column=, timestamp_column= or target= naming its columns")


__all__ = ["ERROR_COLUMN", "backtest_dataset", "forecast_dataset", "portfolio_summary", "symbol_rows", "trades_frame"]
