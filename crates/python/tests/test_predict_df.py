"""`predict_df` against the reference's `predict_df` fixtures (columns, dtypes, row order,
timestamps, values), and the trading system's call pattern on the OHLC files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import PIPELINE_CASES, assert_close, cli, pipeline, shared_ohlc_files

LEVELS = [0.1, 0.5, 0.9]


def reference(name: str) -> pd.DataFrame:
    return pd.DataFrame(json.loads((PIPELINE_CASES / f"{name}.json").read_text())["rows"])


def check_against(result: pd.DataFrame, name: str):
    expected = reference(name)
    assert list(result.columns) == ["item_id", "timestamp", "target_name", "predictions", "0.1", "0.5", "0.9"]
    assert result["predictions"].dtype == np.float32
    assert all(result[str(q)].dtype == np.float32 for q in LEVELS)
    assert pd.api.types.is_datetime64_any_dtype(result["timestamp"])
    assert result["item_id"].tolist() == expected["item_id"].tolist()
    assert result["target_name"].tolist() == expected["target_name"].tolist()
    assert result["timestamp"].dt.strftime("%Y-%m-%d").tolist() == expected["timestamp"].tolist()
    columns = ["predictions", "0.1", "0.5", "0.9"]
    assert_close(result[columns].to_numpy(), expected[columns].to_numpy(), name)


def frames():
    df = pd.read_csv(PIPELINE_CASES / "predict_df_context.csv", parse_dates=["timestamp"])
    future = pd.read_csv(PIPELINE_CASES / "predict_df_future.csv", parse_dates=["timestamp"])
    return df, future


def test_covariates_match_reference_predict_df():
    df, future = frames()
    result = pipeline("tiny-random").predict_df(df, future_df=future, prediction_length=8, quantile_levels=LEVELS)
    check_against(result, "predict_df")


def test_target_only_matches_reference_predict_df():
    df, _ = frames()
    result = pipeline("tiny-random").predict_df(df[["item_id", "timestamp", "target"]], prediction_length=8,
                                                quantile_levels=LEVELS)
    check_against(result, "predict_df_plain")


def test_row_order_and_string_timestamps_do_not_matter():
    df, future = frames()
    shuffled = df.sample(frac=1.0, random_state=0).astype({"timestamp": str})
    result = pipeline("tiny-random").predict_df(shuffled, future_df=future.iloc[::-1], prediction_length=8,
                                                quantile_levels=LEVELS)
    check_against(result, "predict_df")


def test_result_dtypes_follow_the_input_like_the_reference():
    df, _ = frames()
    result = pipeline("tiny-random").predict_df(df[["item_id", "timestamp", "target"]], prediction_length=3)
    assert result.dtypes["item_id"] == df.dtypes["item_id"]
    assert result.dtypes["timestamp"] == df.dtypes["timestamp"]
    assert [c for c in result.columns[4:]] == [str(q) for q in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]]
    assert len(result) == 2 * 3


def ohlc_frame(path, bars: int = 120) -> pd.DataFrame:
    """A shared data file as the trading system holds it: symbol, timestamp, OHLC."""
    raw = pd.read_csv(path)
    raw = raw.rename(columns={raw.columns[0]: "timestamp"}).rename(columns=str.lower)
    raw["timestamp"] = pd.to_datetime(raw["timestamp"], utc=True).dt.tz_localize(None)
    raw = raw.sort_values("timestamp").tail(bars)
    return raw.assign(symbol=path.stem)[["symbol", "timestamp", "open", "high", "low", "close"]]


@pytest.mark.parametrize("path", shared_ohlc_files(), ids=lambda p: p.stem)
def test_trading_system_call_pattern_equals_the_cli(path, tmp_path):
    """The original system's call on every OHLC file gives the forecast `chronos2 forecast`
    prints for the same bars (values, timestamps on the series' calendar)."""
    df = ohlc_frame(path)
    result = pipeline("builtin").predict_df(
        df, id_column="symbol", timestamp_column="timestamp", target=["open", "high", "low", "close"],
        prediction_length=7, quantile_levels=[0.1, 0.5, 0.9],
    )
    assert list(result.columns) == ["symbol", "timestamp", "target_name", "predictions", "0.1", "0.5", "0.9"]
    assert len(result) == 4 * 7
    assert result["target_name"].tolist() == [t for t in ["open", "high", "low", "close"] for _ in range(7)]
    assert (result["timestamp"].iloc[:7] > df["timestamp"].max()).all()
    assert np.isfinite(result[["predictions", "0.1", "0.5", "0.9"]].to_numpy()).all()

    csv = tmp_path / f"{path.stem}.csv"
    df.drop(columns="symbol").to_csv(csv, index=False, date_format="%Y-%m-%d %H:%M:%S")
    printed = json.loads(cli("forecast", "--model", "builtin", "--data", str(csv), "--target", "ohlc",
                             "--horizon", "7", "--quantiles", "0.1,0.5,0.9", "--format", "json"))
    expected = printed["predictions"]
    assert [p["target_name"] for p in expected] == ["open", "high", "low", "close"]
    ours = result["timestamp"].iloc[:7].dt.strftime("%Y-%m-%d %H:%M:%S").tolist()
    assert ours == [t if len(t) > 10 else f"{t} 00:00:00" for t in expected[0]["timestamps"]]
    for column, key in [("predictions", "mean"), ("0.1", "0.1"), ("0.5", "0.5"), ("0.9", "0.9")]:
        assert_close(result[column].to_numpy(), np.concatenate([p[key] for p in expected]), f"{path.stem} {column}")


def test_explicit_freq_is_used_as_given():
    df, _ = frames()
    result = pipeline("tiny-random").predict_df(df[["item_id", "timestamp", "target"]], prediction_length=2,
                                                freq="h")
    last = df.groupby("item_id")["timestamp"].max()
    assert result["timestamp"].iloc[1] == last["AAA"] + pd.Timedelta(hours=2)
