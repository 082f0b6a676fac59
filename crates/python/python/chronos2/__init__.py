"""Chronos-2 forecasting in native Rust, with the reference Python API.

``Chronos2Pipeline`` has the calls, arguments, output shapes and column names of
``chronos.Chronos2Pipeline`` (chronos-forecasting 2.3.2); the model runs in the Rust engine
of the ``chronos2`` CLI (eager or compiled), without torch::

    import pandas as pd
    from chronos2 import Chronos2Pipeline

    pipeline = Chronos2Pipeline.from_pretrained("builtin")   # or a directory, "amazon/chronos-2"
    bars = pd.read_csv("BTCUSD.csv", parse_dates=["Date"]).assign(symbol="BTC-USD")
    forecast = pipeline.predict_df(
        bars.rename(columns=str.lower), id_column="symbol", timestamp_column="date",
        target=["open", "high", "low", "close"], prediction_length=7, quantile_levels=[0.1, 0.5, 0.9],
    )

* ``Chronos2Pipeline.from_pretrained(model, mode=, compile_mode=, dtype=, threads=)``
* ``predict`` (arrays at the model's levels), ``predict_quantiles`` (``(quantiles, mean)``),
  ``predict_df`` (long-format frames)
* ``backtest(data, ...)``: ``chronos2 backtest`` from Python, returning the report and the
  forecasts and trades as DataFrames.

Calls release the GIL, so threads can share one pipeline; bad input raises ``ValueError``
with the CLI's message, a missing model or file ``FileNotFoundError``.
"""

from ._backtest import BacktestResult, backtest
from ._native import __version__
from ._pipeline import Chronos2Pipeline

__all__ = ["BacktestResult", "Chronos2Pipeline", "__version__", "backtest"]
