"""`chronos2.ray` on a local Ray cluster: the same numbers as single-process `predict_df` and
`backtest`, every symbol exactly once after a worker process is killed, bad symbols reported by
name while the others complete, and clear errors for arguments that cannot work.

Ray binds to the machine's interface address even when told 127.0.0.1, so these tests run only
inside a network namespace where loopback is the only interface (`crates/python/tests/python.rs`
runs them under `unshare -n`)."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

if any(name != "lo" for _, name in socket.if_nameindex()):
    pytest.skip("Ray tests run only where loopback is the only network interface (python.rs runs them "
                "under `unshare -n`)", allow_module_level=True)
ray = pytest.importorskip("ray")

from chronos2 import Chronos2Pipeline, backtest  # noqa: E402
from chronos2.ray import (  # noqa: E402
    backtest_dataset,
    forecast_dataset,
    portfolio_summary,
    symbol_rows,
    trades_frame,
)

LEVELS = [0.1, 0.5, 0.9]
SETUP = dict(context=48, horizon=3, windows=6, step=2)
"""A small backtest: 6 windows of 3 steps over the last ~60 bars."""


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """A one-node cluster with 3 logical CPUs: two one-CPU workers and one CPU for Ray Data's
    own tasks, on 2 cores; a 100 MB object store."""
    ray.init(num_cpus=3, object_store_memory=100 * 1024 * 1024, include_dashboard=False,
             logging_level="ERROR", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def bars(symbols: list, seed: int = 0) -> pd.DataFrame:
    """Daily OHLC random walks, 100 to 140 bars per symbol (lengths differ)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, symbol in enumerate(symbols):
        n = 100 + 8 * (i % 6)
        close = 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, n)))
        frames.append(pd.DataFrame({
            "symbol": symbol,
            "timestamp": pd.date_range("2021-01-01", periods=n, freq="D"),
            "open": close * np.exp(rng.normal(0, 0.005, n)),
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
        }))
    return pd.concat(frames, ignore_index=True)


SYMBOLS = [f"S{i:02d}" for i in range(8)]
UNIVERSE = bars(SYMBOLS)


def shuffled(df: pd.DataFrame, blocks: int = 3) -> "ray.data.Dataset":
    """The rows in random order, in several blocks: every symbol is spread over blocks."""
    return ray.data.from_pandas(df.sample(frac=1.0, random_state=1)).repartition(blocks)


def pipeline() -> Chronos2Pipeline:
    return Chronos2Pipeline.from_pretrained("builtin", mode="eager", threads=1)


def forecast_kwargs(**extra) -> dict:
    return dict(id_column="symbol", target="close", prediction_length=5, quantile_levels=LEVELS, **extra)


def by_symbol_and_time(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["symbol", "target_name", "timestamp"]).reset_index(drop=True)


def assert_forecasts_equal(ray_frame: pd.DataFrame, expected: pd.DataFrame, rtol: float) -> None:
    """Same rows, columns and timestamps; values equal (rtol 0) or within rtol."""
    assert ray_frame["error"].isna().all()
    actual = by_symbol_and_time(ray_frame.drop(columns="error"))
    expected = by_symbol_and_time(expected)
    assert list(actual.columns) == list(expected.columns)
    assert actual["symbol"].tolist() == expected["symbol"].tolist()
    assert (pd.DatetimeIndex(actual["timestamp"]) == pd.DatetimeIndex(expected["timestamp"])).all()
    for column in ["predictions", *map(str, LEVELS)]:
        a = actual[column].to_numpy(dtype=np.float32)
        b = expected[column].to_numpy(dtype=np.float32)
        if rtol == 0:
            np.testing.assert_array_equal(a, b, err_msg=column)
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=column)


def test_forecasts_are_bit_identical_to_predict_df_with_the_same_batching():
    """One series per model call on both sides: the same arithmetic, so the same bits."""
    expected = pipeline().predict_df(UNIVERSE, batch_size=1, **forecast_kwargs())
    out = forecast_dataset(shuffled(UNIVERSE), model="builtin", mode="eager", batch_size=1, workers=2,
                           partitions=2, symbols_per_batch=3, **forecast_kwargs()).to_pandas()
    assert_forecasts_equal(out, expected, rtol=0)


def test_batched_forecasts_from_csv_files_match_within_1e_6_and_are_written_by_ray(tmp_path):
    """Symbols batched differently than in one process (within 1e-6 relative); input from CSV
    files with one symbol split across both files; output written by Ray's Parquet writer."""
    first, second = UNIVERSE[UNIVERSE["symbol"] <= "S04"], UNIVERSE[UNIVERSE["symbol"] >= "S04"]
    split = UNIVERSE[UNIVERSE["symbol"] == "S04"]
    first = pd.concat([first[first["symbol"] != "S04"], split.iloc[:50]])
    second = pd.concat([second[second["symbol"] != "S04"], split.iloc[50:]])
    (tmp_path / "in").mkdir()
    first.to_csv(tmp_path / "in/a.csv", index=False)
    second.to_csv(tmp_path / "in/b.csv", index=False)
    ds = ray.data.read_csv(str(tmp_path / "in"))
    forecast_dataset(ds, model="builtin", mode="eager", workers=1, partitions=1, symbols_per_batch=5,
                     **forecast_kwargs()).write_parquet(str(tmp_path / "out"))
    written = pd.read_parquet(tmp_path / "out")
    expected = pipeline().predict_df(UNIVERSE, **forecast_kwargs())
    assert written["symbol"].value_counts().to_dict() == {s: 5 for s in SYMBOLS}
    assert_forecasts_equal(written, expected, rtol=1e-6)


def test_backtests_equal_the_single_process_backtest():
    """Per-symbol figures and trades equal `backtest` on the whole universe: bit-identical with
    one forecast per model call, within 1e-6 relative with the default batching."""
    for batch_size, rtol in [(1, 0.0), (256, 1e-6)]:
        single = backtest(UNIVERSE, pipeline=pipeline(), id_column="symbol", batch_size=batch_size, **SETUP)
        expected = symbol_rows(single, SYMBOLS).set_index("symbol").sort_index()
        out = backtest_dataset(shuffled(UNIVERSE), model="builtin", mode="eager", workers=2, partitions=2,
                               symbols_per_batch=3, batch_size=batch_size, **SETUP).to_pandas()
        actual = out.set_index("symbol").sort_index()
        assert actual.index.tolist() == SYMBOLS
        assert actual["error"].isna().all()
        numbers = [c for c in expected.columns if c not in ("error", "trades")]
        assert sorted(numbers) == sorted(c for c in actual.columns if c not in ("error", "trades"))
        np.testing.assert_allclose(actual[numbers].to_numpy(dtype=float), expected[numbers].to_numpy(dtype=float),
                                   rtol=rtol, atol=0, equal_nan=True)
        if rtol == 0:
            assert actual["trades"].tolist() == expected["trades"].tolist()
    trades = trades_frame(out)
    assert set(trades["series"]) <= set(SYMBOLS) and len(trades) == len(single.trades)


def test_portfolio_summary_is_computed_from_the_symbols():
    good = UNIVERSE[UNIVERSE["symbol"].isin(["S00", "S01", "S02"])]
    results = backtest_dataset(shuffled(pd.concat([good, bars(["SHORT"]).iloc[:5]])), model="builtin",
                               mode="eager", workers=1, partitions=1, **SETUP).to_pandas()
    summary = portfolio_summary(results)
    assert summary["symbols"] == 4 and summary["completed"] == 3
    assert list(summary["failed"]) == ["SHORT"] and "5 bars" in summary["failed"]["SHORT"]
    ok = results[results["error"].isna()].set_index("symbol")
    for name, figures in summary["strategies"].items():
        returns = ok[f"{name}_total_return"].astype(float)
        # Equal capital, never rebalanced: the portfolio's return is the mean of the symbols'.
        assert figures["total_return"] == pytest.approx(returns.mean(), rel=1e-12)
        assert figures["trades"] == int(ok[f"{name}_trades"].sum())
        assert figures["best"][1] == returns.max() and figures["worst"][1] == returns.min()
    assert summary["forecast"]["mase_mean"] == pytest.approx(ok["model_mase"].mean(), rel=1e-12)
    assert json.dumps(summary)  # plain JSON figures


def kill_on(symbol: str, marker: str):
    """A batch hook that kills its own worker process the first time it sees `symbol`."""

    def hook(symbols: list) -> None:
        if symbol in symbols and not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def test_a_killed_worker_still_yields_every_symbol_exactly_once(tmp_path):
    marker = str(tmp_path / "killed")
    out = forecast_dataset(shuffled(UNIVERSE), model="builtin", mode="eager", workers=2, partitions=4,
                           symbols_per_batch=2, on_batch=kill_on("S05", marker), **forecast_kwargs()).to_pandas()
    assert os.path.exists(marker), "the hook never killed a worker"
    assert out.groupby("symbol").size().to_dict() == {s: 5 for s in SYMBOLS}  # 5 steps each, none twice
    assert not out.duplicated(["symbol", "timestamp"]).any()
    expected = pipeline().predict_df(UNIVERSE, **forecast_kwargs())
    assert_forecasts_equal(out, expected, rtol=1e-6)


def test_a_bad_symbol_is_reported_by_name_and_the_others_complete():
    broken = UNIVERSE.copy()
    broken.loc[broken["symbol"] == "S03", "close"] = np.nan  # nothing observed
    out = forecast_dataset(shuffled(broken), model="builtin", mode="eager", workers=2, partitions=2,
                           symbols_per_batch=8, **forecast_kwargs()).to_pandas()
    failed = out[out["error"].notna()]
    assert failed["symbol"].tolist() == ["S03"]
    assert "no observed value" in failed["error"].iloc[0]
    good = UNIVERSE[UNIVERSE["symbol"] != "S03"]
    assert_forecasts_equal(out[out["error"].isna()], pipeline().predict_df(good, **forecast_kwargs()), rtol=1e-6)


def test_an_actor_runs_as_many_engine_threads_as_it_has_cpus():
    from chronos2.ray import _load

    loader = dict(model="builtin", mode="eager", dtype=None, compile_mode=None)
    settings = ray.get([ray.remote(num_cpus=n)(lambda: _load(loader).settings).remote() for n in (1, 2)])
    assert ["threads=1" in settings[0], "threads=2" in settings[1]] == [True, True], settings


def test_arguments_that_cannot_work_are_refused_with_the_fix():
    ds = ray.data.from_pandas(UNIVERSE)
    with pytest.raises(ValueError, match="column 'ticker' not found in the dataset .*symbol, timestamp"):
        forecast_dataset(ds, id_column="ticker", target="close")
    with pytest.raises(ValueError, match="3 workers x 1 CPUs leave none of the cluster's 3 CPUs.*workers <= 2"):
        forecast_dataset(ds, id_column="symbol", target="close", workers=3)
    with pytest.raises(ValueError, match="prediction_length must be a positive integer, found 0"):
        forecast_dataset(ds, id_column="symbol", target="close", prediction_length=0)
    with pytest.raises(ValueError, match=r"quantile_levels must be levels in \(0, 1\)"):
        forecast_dataset(ds, id_column="symbol", target="close", quantile_levels=[0.5, 1.5])
    with pytest.raises(TypeError, match="unknown options \\['horizn'\\]"):
        backtest_dataset(ds, horizn=3)

