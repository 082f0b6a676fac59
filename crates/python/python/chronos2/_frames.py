"""`predict_df`'s data-frame handling, with the reference's rules (`chronos.df_utils`):
checks, grouping by id in first-appearance order, sorting by time, and the forecast
timestamps (pandas' inferred frequency, or, where pandas finds none, the CLI's calendar)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pandas.api.types as ptypes

from . import _native
from ._inputs import as_float32, covariate_values


def validate(
    df: pd.DataFrame,
    future_df: pd.DataFrame | None,
    targets: list,
    prediction_length: int,
    id_column: str,
    timestamp_column: str,
) -> None:
    """Raises ValueError naming the column or rows that do not fit (`validate_df`)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, found {type(df).__name__}")
    if len(df) == 0:
        raise ValueError("df has no rows")
    required = [id_column, timestamp_column, *targets]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"df does not contain all expected columns. Missing columns: {missing} "
            f"(found: {list(df.columns)}); pass id_column=, timestamp_column= or target="
        )
    for col in targets:
        if not ptypes.is_numeric_dtype(df[col]) or ptypes.is_bool_dtype(df[col]):
            raise ValueError(f"Target column '{col}' must be numeric, got dtype {df[col].dtype}")
    if future_df is None:
        return
    if not isinstance(future_df, pd.DataFrame):
        raise TypeError(f"future_df must be a pandas DataFrame, found {type(future_df).__name__}")
    missing = [c for c in (id_column, timestamp_column) if c not in future_df.columns]
    if missing:
        raise ValueError(f"future_df does not contain all expected columns. Missing columns: {missing}")
    in_future = [c for c in future_df.columns if c in targets]
    if in_future:
        raise ValueError(f"future_df cannot contain target columns. Target columns found: {in_future}")
    extra = [c for c in future_df.columns if c not in df.columns]
    if extra:
        raise ValueError(f"future_df cannot contain columns not present in df. Extra columns: {extra}")
    if set(df[id_column].unique()) != set(future_df[id_column].unique()):
        raise ValueError("future_df must have the same time series IDs as df")
    sizes = future_df[id_column].value_counts(sort=False)
    wrong = sizes[sizes != prediction_length]
    if len(wrong) > 0:
        raise ValueError(
            f"future_df must contain prediction_length={prediction_length} rows per item. "
            f"Found {len(wrong)} items with a different number of rows (e.g. {wrong.index[0]!r}: {wrong.iloc[0]})."
        )


def normalize(df: pd.DataFrame, id_column: str, timestamp_column: str, order=None) -> pd.DataFrame:
    """Timestamps as datetimes, rows grouped by id (first appearance, or `order`), sorted by
    time within each id (`normalize_df`)."""
    if not ptypes.is_datetime64_any_dtype(df[timestamp_column]):
        try:
            df = df.assign(**{timestamp_column: pd.to_datetime(df[timestamp_column])})
        except (ValueError, TypeError) as error:
            raise ValueError(f"cannot read column '{timestamp_column}' as timestamps: {error}") from None
    if order is None:
        codes, _ = pd.factorize(df[id_column])
    else:
        codes = pd.Index(order).get_indexer(df[id_column])
    ts = df[timestamp_column].to_numpy().view("int64")
    perm = np.lexsort([ts, codes])
    if not np.array_equal(perm, np.arange(len(df))):
        df = df.iloc[perm].reset_index(drop=True)
    return df


def series_bounds(df: pd.DataFrame, id_column: str) -> np.ndarray:
    """Row offsets of each id's block in a normalized frame: `[0, n1, n1 + n2, ...]`."""
    lengths = df[id_column].value_counts(sort=False).to_numpy()
    return np.concatenate([[0], np.cumsum(lengths)]).astype("int64")


def _inferred_freq(index: pd.DatetimeIndex, bounds: np.ndarray):
    """The one frequency pandas infers for every series of 3+ points, or None."""
    freqs = set()
    for start, end in zip(bounds[:-1], bounds[1:]):
        if end - start >= 3:
            with warnings.catch_warnings():
                # pandas 3 announces that infer_freq will return an offset; either works below.
                warnings.filterwarnings("ignore", message=".*infer_freq.*")
                freq = pd.infer_freq(index[start:end])
            if freq is None:
                return None
            freqs.add(freq)
    return freqs.pop() if len(freqs) == 1 else None


def _calendar_future(times: pd.DatetimeIndex, prediction_length: int, label: str) -> pd.DatetimeIndex:
    """The CLI's calendar (most common step; weekends skipped for bars that never fall on
    one) for a series pandas finds no frequency for, e.g. trading days with holidays."""
    tz = times.tz
    utc = times.tz_convert("UTC").tz_localize(None) if tz is not None else times
    seconds = np.asarray(utc, dtype="datetime64[s]").astype(np.int64).tolist()
    future = pd.to_datetime(_native.future_timestamps(seconds, prediction_length, str(label)), unit="s")
    future = future.as_unit(times.unit) if hasattr(future, "as_unit") and hasattr(times, "unit") else future
    return future.tz_localize("UTC").tz_convert(tz) if tz is not None else future


def future_frame(df: pd.DataFrame, prediction_length: int, freq, id_column: str, timestamp_column: str):
    """The forecast timestamps: `prediction_length` rows per id, ids in first-appearance
    order (`make_future_df`). Without `freq`, pandas' inferred frequency, else the CLI's
    calendar per series."""
    bounds = series_bounds(df, id_column)
    index = pd.DatetimeIndex(df[timestamp_column])
    ids = df[id_column].to_numpy()[bounds[:-1]]
    if freq is None:
        freq = _inferred_freq(index, bounds)
    if freq is not None:
        offset = pd.tseries.frequencies.to_offset(freq)
        last = index[bounds[1:] - 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=pd.errors.PerformanceWarning)
            steps = np.stack([last + k * offset for k in range(1, prediction_length + 1)], axis=1).ravel()
        future = pd.DatetimeIndex(steps)
    else:
        blocks = [
            _calendar_future(index[start:end], prediction_length, item)
            for item, start, end in zip(ids, bounds[:-1], bounds[1:])
        ]
        future = blocks[0].append(blocks[1:]) if len(blocks) > 1 else blocks[0]
    return pd.DataFrame({id_column: np.repeat(ids, prediction_length), timestamp_column: future})


def tasks_from_frames(
    df: pd.DataFrame,
    future_df: pd.DataFrame | None,
    targets: list,
    prediction_length: int,
    id_column: str,
    timestamp_column: str,
) -> list:
    """One task per id: its target columns, every other column as a past covariate, known in
    the future when `future_df` has it (`from_data_frame`)."""
    bounds = series_bounds(df, id_column)
    target_array = as_float32(df[targets].to_numpy(dtype=np.float32, na_value=np.nan).T)
    others = [c for c in df.columns if c not in (id_column, timestamp_column) and c not in targets]
    past = {c: df[c].to_numpy() for c in others}
    future = {}
    if future_df is not None:
        future = {c: future_df[c].to_numpy() for c in others if c in future_df.columns}
    tasks = []
    for i, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        f0, f1 = i * prediction_length, (i + 1) * prediction_length
        covariates = [
            (
                str(c),
                covariate_values(past[c][start:end]),
                covariate_values(future[c][f0:f1]) if c in future else None,
            )
            for c in others
        ]
        tasks.append((target_array[:, start:end], covariates))
    return tasks
