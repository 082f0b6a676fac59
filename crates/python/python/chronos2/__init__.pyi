"""Type stubs of the public API."""

import os
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt
import pandas as pd

class Chronos2Pipeline:
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: Union[str, os.PathLike[str], None] = None,
        *,
        mode: Optional[str] = None,
        compile_mode: Optional[str] = None,
        backend: Optional[str] = None,
        dtype: Any = None,
        threads: Optional[int] = None,
        offline: bool = False,
        device: Optional[str] = None,
        device_map: Optional[str] = None,
        torch_dtype: Any = None,
        compile_cache: Optional[str] = None,
    ) -> Chronos2Pipeline: ...
    @property
    def model_label(self) -> str: ...
    @property
    def settings(self) -> str: ...
    @property
    def quantiles(self) -> list[float]: ...
    @property
    def model_context_length(self) -> int: ...
    @property
    def model_output_patch_size(self) -> int: ...
    @property
    def max_output_patches(self) -> int: ...
    @property
    def model_prediction_length(self) -> int: ...
    def predict(
        self,
        inputs: Any,
        prediction_length: Optional[int] = None,
        batch_size: int = 256,
        context_length: Optional[int] = None,
        cross_learning: bool = False,
        limit_prediction_length: bool = False,
        **kwargs: Any,
    ) -> list[npt.NDArray[np.float32]]: ...
    def predict_quantiles(
        self,
        inputs: Any,
        prediction_length: Optional[int] = None,
        quantile_levels: Sequence[float] = ...,
        **predict_kwargs: Any,
    ) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.float32]]]: ...
    def predict_df(
        self,
        df: pd.DataFrame,
        future_df: Optional[pd.DataFrame] = None,
        id_column: str = "item_id",
        timestamp_column: str = "timestamp",
        target: Union[str, list[str]] = "target",
        prediction_length: Optional[int] = None,
        quantile_levels: Sequence[float] = ...,
        batch_size: int = 256,
        context_length: Optional[int] = None,
        cross_learning: bool = False,
        validate_inputs: bool = True,
        freq: Optional[str] = None,
        **predict_kwargs: Any,
    ) -> pd.DataFrame: ...

class BacktestResult(NamedTuple):
    report: dict[str, Any]
    forecasts: pd.DataFrame
    trades: pd.DataFrame

def backtest(
    data: Union[pd.DataFrame, str, os.PathLike[str]],
    *,
    pipeline: Optional[Chronos2Pipeline] = None,
    model: Optional[str] = None,
    mode: Optional[str] = None,
    threads: Optional[int] = None,
    target: str = "close",
    context: int = 512,
    horizon: int = 7,
    windows: int = 100,
    step: int = 1,
    first_origin: Union[int, str, None] = None,
    season: Optional[int] = None,
    periods_per_year: Optional[float] = None,
    trade_step: int = 1,
    threshold: float = 0.005,
    interval: tuple[float, float] = (0.1, 0.9),
    long_only: bool = False,
    fraction: float = 1.0,
    fee_bps: float = 10.0,
    slippage_bps: float = 5.0,
    batch_size: int = 256,
    id_column: Optional[str] = None,
    fill: str = "none",
    keep_last: bool = False,
    name: str = "dataframe",
    out: Union[str, os.PathLike[str], None] = None,
) -> BacktestResult: ...

__version__: str
"""The version of the package (the Rust crates' version)."""

__all__ = ["BacktestResult", "Chronos2Pipeline", "__version__", "backtest"]
