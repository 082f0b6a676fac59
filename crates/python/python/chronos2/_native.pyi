"""Type stubs of the native module (the Rust half of the package)."""

from os import PathLike
from typing import Any, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

Values = Union[npt.NDArray[np.float32], list[Optional[str]]]
Task = tuple[npt.NDArray[np.float32], list[tuple[str, Values, Optional[Values]]]]

BACKTEST_LEVELS: list[float]

class NativePipeline:
    label: str
    settings: str
    notes: list[str]
    @staticmethod
    def load(
        model: Optional[str] = None,
        mode: Optional[str] = None,
        compile_mode: Optional[str] = None,
        backend: Optional[str] = None,
        dtype: Optional[str] = None,
        threads: Optional[int] = None,
        offline: bool = False,
        device: Optional[str] = None,
        compile_cache: Optional[str] = None,
    ) -> NativePipeline: ...
    @property
    def quantiles(self) -> list[float]: ...
    @property
    def context_length(self) -> int: ...
    @property
    def output_patch_size(self) -> int: ...
    @property
    def max_output_patches(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def plans_built(self) -> int: ...
    def predict(
        self, tasks: list[Task], args: dict[str, Any]
    ) -> tuple[list[npt.NDArray[np.float32]], list[str]]: ...
    def predict_quantiles(
        self, tasks: list[Task], args: dict[str, Any], levels: Sequence[float]
    ) -> tuple[list[npt.NDArray[np.float32]], list[npt.NDArray[np.float32]], list[str]]: ...

def backtest(
    pipeline: NativePipeline,
    args: dict[str, Any],
    path: Union[str, PathLike[str], None] = None,
    csv: Optional[bytes] = None,
    name: str = "dataframe.csv",
    out: Union[str, PathLike[str], None] = None,
) -> tuple[str, list[tuple[str, list[int]]]]: ...
def future_timestamps(times: list[int], horizon: int, label: str) -> list[int]: ...

__version__: str
