"""The reference's `predict` inputs as tasks for the native pipeline.

A task is `(targets, covariates)`: `targets` a C-contiguous float32 array `(n_variates, T)`
and `covariates` a list of `(name, past, future_or_None)`, where values are float32 arrays
(numeric) or lists of `str | None` (categorical). Float32 C-contiguous input is passed as a
view, never converted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ALLOWED_KEYS = {"target", "past_covariates", "future_covariates"}


def as_float32(values: Any) -> np.ndarray:
    """`values` as a C-contiguous float32 array (a view when it already is one)."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.float32))


def is_numeric(values: np.ndarray) -> bool:
    """Numbers (booleans count as categories, as in the reference)."""
    return values.dtype.kind in "iuf"


def categories(values: np.ndarray) -> list:
    """Categorical values as strings; None and NaN are missing."""
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        else:
            out.append(str(v))
    return out


def covariate_values(values: Any) -> Any:
    """A covariate's values as the native side reads them."""
    array = np.asarray(values)
    return as_float32(array) if is_numeric(array) else categories(array)


def _array(item: Any) -> np.ndarray:
    """A tensor or array-like as a numpy array (CPU torch tensors convert without a copy)."""
    if hasattr(item, "detach") and hasattr(item, "cpu"):
        item = item.detach().cpu().numpy()
    return np.asarray(item)


def _target(item: Any, where: str) -> np.ndarray:
    """A 1-d or 2-d target as `(n_variates, T)` float32."""
    array = _array(item)
    if array.ndim not in (1, 2):
        raise ValueError(
            f"{where}: each element should be 1-d or 2-d, with shape (history_length,) or "
            f"(n_variates, history_length), found shape {tuple(array.shape)}"
        )
    if array.shape[-1] == 0:
        raise ValueError(f"{where}: the target series is empty")
    if not is_numeric(array) and array.dtype.kind != "b":
        raise ValueError(f"{where}: the target must be numeric, found dtype {array.dtype}")
    return as_float32(array.reshape(-1, array.shape[-1]))


def _dict_task(item: Mapping, idx: int, prediction_length: int) -> tuple:
    keys = set(item.keys())
    if not keys <= ALLOWED_KEYS:
        raise ValueError(
            f"Found invalid keys in element at index {idx}. Allowed keys are {sorted(ALLOWED_KEYS)}, "
            f"but found {sorted(keys)}"
        )
    if "target" not in item:
        raise ValueError(f"Element at index {idx} does not contain the required key 'target'")
    targets = _target(item["target"], f"element {idx}: `target`")
    history = targets.shape[1]
    past = item.get("past_covariates") or {}
    future = item.get("future_covariates") or {}
    for kind, given in [("past_covariates", past), ("future_covariates", future)]:
        if not isinstance(given, Mapping):
            raise ValueError(
                f"Found invalid type for `{kind}` in element at index {idx}: expected a dict of "
                f"name -> 1-d array, found {type(given).__name__}"
            )
    unknown = sorted(set(future) - set(past))
    if unknown:
        raise ValueError(
            f"element {idx}: `future_covariates` {unknown} must also be `past_covariates` (their past values)"
        )
    covariates = []
    for name, values in past.items():
        values = _array(values)
        if values.ndim != 1 or len(values) != history:
            raise ValueError(
                f"Individual `past_covariates` must be 1-d with length equal to the length of `target` "
                f"(= {history}), found: {name} with shape {tuple(values.shape)} in element at index {idx}"
            )
        fut = future.get(name)
        if fut is not None:
            fut = _array(fut)
            if fut.ndim != 1 or len(fut) != prediction_length:
                raise ValueError(
                    f"Individual `future_covariates` must be 1-d with length equal to the "
                    f"prediction_length={prediction_length}, got shape {tuple(fut.shape)} for {name} "
                    f"at index {idx}"
                )
            fut = covariate_values(fut)
        covariates.append((str(name), covariate_values(values), fut))
    return targets, covariates


def to_tasks(inputs: Any, prediction_length: int) -> list:
    """The reference's inputs (3-d array; list of 1-d/2-d arrays; list of dicts), plus a 1-d
    array (one series) and a 2-d array (a batch of univariate series), as tasks."""
    if isinstance(inputs, Mapping):
        inputs = [inputs]
    if not isinstance(inputs, Sequence):
        array = _array(inputs)
        if array.ndim == 1:
            return [(_target(array, "inputs"), [])]
        if array.ndim == 2:
            batch = as_float32(array)
            return [(batch[i : i + 1], []) for i in range(batch.shape[0])] or _empty()
        if array.ndim == 3:
            batch = as_float32(array)
            if batch.shape[-1] == 0:
                raise ValueError("inputs: the series are empty (history_length 0)")
            return [(batch[i], []) for i in range(batch.shape[0])] or _empty()
        raise ValueError(
            f"Expected a 1-d, 2-d or 3-d array with shape (n_series, n_variates, history_length), "
            f"got shape {tuple(array.shape)}"
        )
    if len(inputs) == 0:
        _empty()
    tasks = []
    for idx, item in enumerate(inputs):
        if isinstance(item, Mapping):
            tasks.append(_dict_task(item, idx, prediction_length))
        else:
            tasks.append((_target(item, f"element {idx}"), []))
    return tasks


def _empty():
    raise ValueError("`inputs` is empty. Please provide at least one time series.")
