"""Bad input raises the Python exception a user expects, with a message naming what is wrong;
the interpreter never crashes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chronos2 import Chronos2Pipeline, backtest
from conftest import REPO, pipeline


@pytest.fixture(scope="module")
def pipe():
    return pipeline("tiny-random")


def test_missing_model_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        Chronos2Pipeline.from_pretrained(tmp_path / "no-such-model", offline=True)


def test_a_directory_that_is_not_a_checkpoint_is_a_value_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises((ValueError, OSError), match="config.json"):
        Chronos2Pipeline.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"mode": "fast"}, "fast"), ({"compile_mode": "turbo"}, "turbo"), ({"dtype": "int4"}, "int4"),
     ({"device_map": "cuda"}, "rebuild with `--features cuda`"),
     ({"device": "cuda:0"}, "rebuild with `--features cuda`"),
     ({"device": "tpu"}, "is not a device")],
)
def test_unknown_settings_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Chronos2Pipeline.from_pretrained("builtin", **kwargs)


@pytest.mark.parametrize(
    "inputs, message",
    [
        ([], "empty"),
        (np.zeros((2, 2, 2, 2)), "shape"),
        ([np.zeros((2, 3, 4))], "1-d or 2-d"),
        ([np.array(["a", "b"])], "numeric"),
        ([{"past_covariates": {}}], "'target'"),
        ([{"target": np.ones(10), "past_covariates": {"x": np.ones(9)}}], "length equal to the length of `target`"),
        ([{"target": np.ones(10), "past_covariates": {"x": np.ones(10)}, "future_covariates": {"x": np.ones(3)}}],
         "prediction_length=5"),
        ([{"target": np.ones(10), "future_covariates": {"x": np.ones(5)}}], "must also be `past_covariates`"),
        ([{"target": np.ones(10), "oops": 1}], "invalid keys"),
        ([np.ones(10), np.ones((2, 10))], "2 targets but task 0 has 1"),
        ([np.full(10, np.nan)], "no observed value"),
    ],
)
def test_bad_inputs_are_value_errors(pipe, inputs, message):
    with pytest.raises(ValueError, match=message):
        pipe.predict(inputs, prediction_length=5)


def test_bad_options(pipe):
    with pytest.raises(ValueError, match="prediction_length"):
        pipe.predict([np.ones(10)], prediction_length=0)
    with pytest.raises(ValueError, match="batch_size"):
        pipe.predict([np.ones(10)], prediction_length=3, batch_size=-1)
    with pytest.raises(TypeError, match="Unexpected keyword arguments"):
        pipe.predict([np.ones(10)], prediction_length=3, temperature=1.0)
    with pytest.raises(ValueError, match="unrolled quantile 0.33"):
        pipe.predict([np.ones(10)], prediction_length=3, unrolled_quantiles=[0.33])
    with pytest.raises(ValueError, match="exceeds"):
        pipe.predict([np.ones(10)], prediction_length=500, limit_prediction_length=True)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pipe.predict_quantiles([np.ones(10)], prediction_length=3, quantile_levels=[0.5, 1.5])


def test_long_horizons_warn_like_the_reference(pipe):
    with pytest.warns(UserWarning, match="unrolled"):
        pipe.predict([np.arange(30.0)], prediction_length=60)


def frame():
    t = pd.date_range("2024-01-01", periods=20, freq="D")
    return pd.DataFrame({"item_id": "A", "timestamp": t, "target": np.arange(20.0), "kind": "x"})


@pytest.mark.parametrize(
    "change, kwargs, message",
    [
        (lambda df: df.drop(columns="target"), {}, "Missing columns: \\['target'\\]"),
        (lambda df: df.assign(target="a"), {}, "must be numeric"),
        (lambda df: df, {"id_column": "symbol"}, "symbol"),
        (lambda df: df.assign(timestamp="not a date"), {}, "timestamp"),
        (lambda df: df.iloc[0:0], {}, "no rows"),
    ],
)
@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_bad_frames_are_value_errors(pipe, change, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe.predict_df(change(frame()), prediction_length=3, **kwargs)


def test_bad_future_frames_are_value_errors(pipe):
    df = frame()
    future = pd.DataFrame({"item_id": "A", "timestamp": pd.date_range("2024-01-21", periods=2), "kind": "x"})
    with pytest.raises(ValueError, match="prediction_length=3 rows per item"):
        pipe.predict_df(df, future_df=future, prediction_length=3)
    future = pd.DataFrame({"item_id": "A", "timestamp": pd.date_range("2024-02-01", periods=3), "kind": "x"})
    with pytest.raises(ValueError, match="do not match the expected prediction timestamps"):
        pipe.predict_df(df, future_df=future, prediction_length=3)
    with pytest.raises(ValueError, match="cannot contain target columns"):
        pipe.predict_df(df, future_df=future.assign(target=1.0), prediction_length=3)
    with pytest.raises(ValueError, match="same time series IDs"):
        pipe.predict_df(df, future_df=future.assign(item_id="B"), prediction_length=3)


def test_backtest_errors(pipe, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        backtest(tmp_path / "missing.csv", pipeline=pipe)
    data = REPO / "data/BTCUSD.csv"
    with pytest.raises(ValueError, match="windows|context|bars"):
        backtest(data, pipeline=pipe, windows=100000)
    # Any column can be the target; one the file lacks is named with the fix.
    with pytest.raises(ValueError, match="target"):
        backtest(data, pipeline=pipe, target="no_such_column")
    with pytest.raises(ValueError, match="interval"):
        backtest(data, pipeline=pipe, interval=(0.9, 0.1), windows=2)
    with pytest.raises(ValueError, match="fraction"):
        backtest(data, pipeline=pipe, fraction=0.0)
    with pytest.raises(ValueError, match="fill"):
        backtest(data, pipeline=pipe, fill="backward")
    with pytest.raises(ValueError, match="close"):
        backtest(pd.DataFrame({"date": ["2024-01-01"], "open": [1.0]}), pipeline=pipe)
    with pytest.raises(ValueError, match="first_origin"):
        backtest(data, pipeline=pipe, first_origin=-3)
    with pytest.raises(ValueError, match="first_origin"):
        backtest(data, pipeline=pipe, first_origin="someday")
    with pytest.raises(TypeError, match="DataFrame or a file path"):
        backtest(42, pipeline=pipe)


def test_backtest_errors_speak_keyword_arguments_and_name_the_dataframe(pipe):
    days = pd.date_range("2024-01-01", periods=80, freq="D")
    frame = pd.DataFrame({"date": days, "value": np.linspace(100.0, 120.0, 80)})
    with pytest.raises(ValueError) as error:
        backtest(frame, pipeline=pipe, context=32, horizon=3, windows=4, name="prices")
    message = str(error.value)
    assert "the DataFrame `prices`" in message and "bundled" not in message, message
    assert "`target=<column>`" in message and "--target" not in message, message
    # A series too short for the windows under strict=True: the advice names keywords.
    with pytest.raises(ValueError) as error:
        backtest(frame.rename(columns={"value": "close"}), pipeline=pipe, context=32, horizon=3, windows=200,
                 strict=True, name="prices")
    message = str(error.value)
    assert "--" not in message, message
