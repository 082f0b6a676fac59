"""`chronos2.backtest` from Python equals `chronos2 backtest` on the same input: report.json,
forecasts.csv and trades.csv, with real timestamps in the returned frames."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from chronos2 import backtest
from conftest import MODELS, REPO, cli, pipeline

DATA = REPO / "data/BTCUSD.csv"
SETUP = dict(context=64, horizon=5, windows=12, step=3, target="ohlc", trade_step=2, threshold=0.001,
             interval=(0.2, 0.8), fee_bps=7.5)
FLAGS = ["--context", "64", "--horizon", "5", "--windows", "12", "--step", "3", "--target", "ohlc",
         "--trade-step", "2", "--threshold", "0.001", "--interval", "0.2,0.8", "--fee-bps", "7.5"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    cli("backtest", "--model", str(MODELS / "tiny-random"), "--mode", "eager", "--threads", "2",
        "--data", str(DATA), "--out", str(out), *FLAGS)
    return out


def without_timing(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "timing"}


def test_report_equals_the_cli_report(cli_run, tmp_path):
    result = backtest(DATA, pipeline=pipeline("tiny-random"), out=tmp_path, **SETUP)
    expected = json.loads((cli_run / "report.json").read_text())
    assert without_timing(result.report) == without_timing(expected)
    assert result.report["timing"]["model_calls"] == expected["timing"]["model_calls"]
    # `out=` writes the CLI's files.
    written = json.loads((tmp_path / "report.json").read_text())
    assert without_timing(written) == without_timing(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "forecasts.csv", "portfolio.csv", "report.html", "report.json", "summary.csv", "trades.csv"]


def test_a_dataframe_gives_the_file_report(cli_run):
    bars = pd.read_csv(DATA, parse_dates=["Date"]).set_index("Date")
    result = backtest(bars, pipeline=pipeline("tiny-random"), name="BTCUSD", **SETUP)
    expected = json.loads((cli_run / "report.json").read_text())
    assert result.report["data"] == "bundled BTCUSD.csv"
    for key in expected:
        if key not in ("timing", "data"):
            assert result.report[key] == expected[key], key


def test_forecasts_and_trades_have_real_timestamps(cli_run):
    result = backtest(DATA, pipeline=pipeline("tiny-random"), **SETUP)
    dates = pd.read_csv(DATA, parse_dates=["Date"])["Date"]
    forecasts = result.forecasts
    expected = pd.read_csv(cli_run / "forecasts.csv")
    assert len(forecasts) == len(expected) == 12 * 5
    assert forecasts["origin_time"].dt.strftime("%Y-%m-%d").tolist() == expected["origin_time"].tolist()
    assert forecasts["bar"].tolist() == expected["bar"].tolist()
    assert (forecasts["target_time"].to_numpy() == dates.iloc[forecasts["bar"]].to_numpy()).all()
    # One naming scheme: the frame's columns are the file's (levels as `0.1`, as predict_df).
    assert list(forecasts.columns) == [c for c in expected.columns if c not in ("context_first_time", "context_last_time")]
    for column in ["actual", "median", "0.1", "0.5", "0.9", "naive", "seasonal_naive", "drift"]:
        np.testing.assert_allclose(forecasts[column], expected[column], rtol=1e-12, err_msg=column)

    trades = result.trades
    expected = pd.read_csv(cli_run / "trades.csv")
    assert len(trades) == len(expected) > 0
    assert trades["entry_bar"].tolist() == expected["entry_bar"].tolist()
    assert trades["strategy"].tolist() == expected["strategy"].tolist()
    assert (trades["exit_time"].to_numpy() == dates.iloc[trades["exit_bar"]].to_numpy()).all()
    np.testing.assert_allclose(trades["pnl"], expected["pnl"], rtol=1e-12)


def test_result_unpacks_and_reports_every_figure():
    report, forecasts, trades = backtest(DATA, pipeline=pipeline("tiny-random"), context=32, horizon=3, windows=4)
    series = report["series"][0]
    assert series["label"] == "BTCUSD"
    assert {"mae", "rmse", "mase", "wape"} <= set(series["model"])
    assert {"wql", "coverage", "msis"} <= set(series["quantile"])
    assert [s["name"] for s in series["strategies"]]
    assert len(forecasts) == 4 * 3 and isinstance(trades, pd.DataFrame)


def test_a_dated_first_origin_is_the_first_bar_on_or_after_it():
    report, forecasts, _ = backtest(DATA, pipeline=pipeline("tiny-random"), context=32, horizon=3, windows=2,
                                    first_origin="2023-06-01")
    dates = pd.read_csv(DATA, parse_dates=["Date"])["Date"]
    index = int((dates >= "2023-06-01").idxmax())
    assert report["options"]["first_origin"] == index
    assert forecasts["origin_time"].iloc[0] == dates.iloc[index]
