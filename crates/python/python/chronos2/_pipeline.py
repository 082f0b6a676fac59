"""`Chronos2Pipeline`: the reference's API (chronos-forecasting 2.3.2) over the Rust engine."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

from . import _frames
from ._inputs import to_tasks
from ._native import NativePipeline

logger = logging.getLogger("chronos2")

DEFAULT_LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def _dtype_name(dtype: Any) -> str | None:
    """`torch.float32`, `"float32"` or `"auto"` as the engine's dtype name."""
    if dtype is None or dtype == "auto":
        return None
    return str(dtype).replace("torch.", "")


class Chronos2Pipeline:
    """Chronos-2 forecasts with the reference `chronos.Chronos2Pipeline`'s calls, arguments,
    output shapes and column names, computed by the native Rust engine (no torch).

    Build one with :meth:`from_pretrained`; then :meth:`predict` (arrays at the model's
    quantile levels), :meth:`predict_quantiles` (chosen levels and the median) or
    :meth:`predict_df` (long-format pandas frames). One pipeline may be shared by several
    threads: every call releases the GIL while it computes.
    """

    def __init__(self, native: NativePipeline):
        self._native = native

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike | None = None,
        *,
        mode: str | None = None,
        compile_mode: str | None = None,
        backend: str | None = None,
        dtype: Any = None,
        threads: int | None = None,
        offline: bool = False,
        device: str | None = None,
        device_map: str | None = None,
        torch_dtype: Any = None,
        compile_cache: str | None = None,
    ) -> "Chronos2Pipeline":
        """Loads a model as ``chronos2`` (the CLI) does.

        ``pretrained_model_name_or_path``: a checkpoint directory, a Hugging Face id such as
        ``"amazon/chronos-2"`` (``@revision`` allowed; from the cache, else downloaded unless
        ``offline`` or ``HF_HUB_OFFLINE=1``), or ``"builtin"``; default ``CHRONOS2_MODEL``,
        else the built-in model.

        ``mode`` (``"eager"`` / ``"compiled"``), ``compile_mode`` (``"default"``,
        ``"reduce-overhead"``, ``"max-autotune"``), ``backend``, ``dtype`` and ``threads``
        default to ``TORCH_COMPILED`` / ``CHRONOS_COMPILE``, ``CHRONOS_COMPILE_MODE``,
        ``CHRONOS_COMPILE_BACKEND`` and ``CHRONOS_DTYPE``, as in the CLI (arguments win).
        ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``; default ``CHRONOS_DEVICE``, else the
        CPU) chooses where the model runs; a GPU needs the package built with the cargo
        feature ``cuda`` (``maturin build --release --features cuda``). ``device_map`` and
        ``torch_dtype`` are accepted for code written for the reference (``device_map="cuda"``
        means ``device="cuda"``). ``compile_cache`` (``"prefer"``, ``"never"``, ``"only"``;
        default ``CHRONOS_COMPILE_CACHE``, else ``"prefer"``) says whether compiled mode maps
        its prepared weights from the cache in ``CHRONOS2_CACHE_DIR`` (else ``~/.cache/chronos2``)
        instead of repacking them at every start.

        Raises ``FileNotFoundError`` when the model is not found, ``ValueError`` for unknown
        settings or a checkpoint that does not load.
        """
        if device_map not in (None, "auto"):
            if not isinstance(device_map, str):
                raise ValueError(f"device_map={device_map!r}: pass a device name such as 'cpu' or 'cuda'")
            if device is not None and device != device_map:
                raise ValueError("pass either device= or device_map=, not both")
            device = device_map
        if torch_dtype is not None and dtype is not None:
            raise ValueError("pass either dtype= or torch_dtype=, not both")
        native = NativePipeline.load(
            model=None if pretrained_model_name_or_path is None else os.fspath(pretrained_model_name_or_path),
            mode=mode,
            compile_mode=compile_mode,
            backend=backend,
            dtype=_dtype_name(dtype if dtype is not None else torch_dtype),
            threads=threads,
            offline=offline,
            device=device,
            compile_cache=compile_cache,
        )
        for note in native.notes:
            logger.info(note)
        return cls(native)

    def __repr__(self) -> str:
        return f"Chronos2Pipeline(model={self._native.label!r}, {self._native.settings})"

    @property
    def model_label(self) -> str:
        """What reports call the model (its directory, Hugging Face id or ``builtin``)."""
        return self._native.label

    @property
    def settings(self) -> str:
        """The resolved engine settings, as the CLI prints them."""
        return self._native.settings

    @property
    def quantiles(self) -> list:
        """The model's quantile levels."""
        return [float(str(np.float32(q))) for q in self._native.quantiles]  # 0.01, not 0.0099999998

    @property
    def model_context_length(self) -> int:
        """The longest context the model reads."""
        return self._native.context_length

    @property
    def model_output_patch_size(self) -> int:
        """Steps per output patch."""
        return self._native.output_patch_size

    @property
    def max_output_patches(self) -> int:
        """Output patches per forward pass."""
        return self._native.max_output_patches

    @property
    def model_prediction_length(self) -> int:
        """Steps one forward pass predicts (longer horizons are unrolled)."""
        return self.max_output_patches * self.model_output_patch_size

    def _options(
        self,
        prediction_length: int | None,
        batch_size: int = 256,
        context_length: int | None = None,
        cross_learning: bool = False,
        limit_prediction_length: bool = False,
        **kwargs: Any,
    ) -> dict:
        """The native call's options, checked; unknown keywords are a TypeError (as in the
        reference)."""
        if prediction_length is None:
            prediction_length = self.model_prediction_length
        if "predict_batches_jointly" in kwargs:
            warnings.warn(
                "The `predict_batches_jointly` argument is deprecated; use `cross_learning=True`.",
                FutureWarning,
                stacklevel=3,
            )
            cross_learning = kwargs.pop("predict_batches_jointly")
        max_output_patches = kwargs.pop("max_output_patches", None)
        unrolled_quantiles = kwargs.pop("unrolled_quantiles", None)
        if kwargs:
            raise TypeError(f"Unexpected keyword arguments: {list(kwargs.keys())}.")
        return {
            "prediction_length": _positive(prediction_length, "prediction_length"),
            "batch_size": _positive(batch_size, "batch_size"),
            "context_length": None if context_length is None else _positive(context_length, "context_length"),
            "cross_learning": bool(cross_learning),
            "max_output_patches": None
            if max_output_patches is None
            else _positive(max_output_patches, "max_output_patches"),
            "unrolled_quantiles": None if unrolled_quantiles is None else [float(q) for q in unrolled_quantiles],
            "limit_prediction_length": bool(limit_prediction_length),
        }

    def _call(self, name: str, tasks: list, options: dict, *extra: Any) -> list:
        """Runs the native `name` and turns its messages into warnings, as the reference does."""
        *results, messages = getattr(self._native, name)(tasks, options, *extra)
        for message in messages:
            warnings.warn(message, stacklevel=3)
        return results

    def predict(
        self,
        inputs: Any,
        prediction_length: int | None = None,
        batch_size: int = 256,
        context_length: int | None = None,
        cross_learning: bool = False,
        limit_prediction_length: bool = False,
        **kwargs: Any,
    ) -> list:
        """Forecasts at the model's quantile levels.

        ``inputs``: a 3-d array ``(n_series, n_variates, history_length)``; a list of 1-d or
        2-d arrays ``(n_variates, history_length)`` of any lengths; a list of dicts with
        ``target`` (1-d or 2-d), ``past_covariates`` (name -> 1-d array over the history,
        numeric or categorical) and ``future_covariates`` (name -> 1-d array of
        ``prediction_length`` values, for covariates known in advance); also a 1-d array
        (one series) or a 2-d array (a batch of univariate series). Torch tensors work too.

        ``prediction_length`` defaults to one forward pass; longer horizons are unrolled
        (with a warning) unless ``limit_prediction_length``. Keyword options of the reference:
        ``max_output_patches``, ``unrolled_quantiles``.

        Returns one float32 array per series, shaped ``(n_variates, n_quantiles,
        prediction_length)``. Raises ``ValueError`` for input that does not fit.
        """
        options = self._options(
            prediction_length, batch_size, context_length, cross_learning, limit_prediction_length, **kwargs
        )
        (arrays,) = self._call("predict", to_tasks(inputs, options["prediction_length"]), options)
        return arrays

    def predict_quantiles(
        self,
        inputs: Any,
        prediction_length: int | None = None,
        quantile_levels: list = DEFAULT_LEVELS,
        **predict_kwargs: Any,
    ) -> tuple:
        """Forecasts at ``quantile_levels`` (interpolated between the model's levels, clamped
        outside them) and the median, which the reference calls the mean.

        Returns ``(quantiles, mean)``: per series, float32 arrays ``(n_variates,
        prediction_length, len(quantile_levels))`` and ``(n_variates, prediction_length)``.
        Other arguments as :meth:`predict`.
        """
        options = self._options(prediction_length, **predict_kwargs)
        return self._quantiles(to_tasks(inputs, options["prediction_length"]), options, quantile_levels)

    def _quantiles(self, tasks: list, options: dict, quantile_levels: list) -> tuple:
        levels = [float(q) for q in quantile_levels]
        if not levels:
            raise ValueError("quantile_levels is empty")
        trained = self._native.quantiles
        if min(levels) < min(trained) or max(levels) > max(trained):
            logger.warning(
                "Quantiles to be predicted (%s) are not within the range of quantiles that Chronos-2 was "
                "trained on (%s); they are set to the outermost trained levels.",
                levels,
                trained,
            )
        quantiles, mean = self._call("predict_quantiles", tasks, options, levels)
        return quantiles, mean

    def predict_df(
        self,
        df: pd.DataFrame,
        future_df: pd.DataFrame | None = None,
        id_column: str = "item_id",
        timestamp_column: str = "timestamp",
        target: str | list = "target",
        prediction_length: int | None = None,
        quantile_levels: list = DEFAULT_LEVELS,
        batch_size: int = 256,
        context_length: int | None = None,
        cross_learning: bool = False,
        validate_inputs: bool = True,
        freq: str | None = None,
        **predict_kwargs: Any,
    ) -> pd.DataFrame:
        """Forecasts every series of a long-format frame.

        ``df``: one row per (id, timestamp) with ``target`` column(s) (one target or a list,
        forecast jointly); every other column is a past covariate, known in the future when
        ``future_df`` (same id and timestamp columns, ``prediction_length`` rows per id at the
        forecast timestamps) has it. Rows may come in any order.

        Forecast timestamps follow ``freq`` when given, else the frequency pandas infers;
        where pandas infers none (trading days with holidays, FX with weekend gaps) they
        follow the CLI's calendar: the most common step, skipping weekends when the series
        never has a bar on one. (The reference raises ``ValueError`` there.)

        Returns the reference's frame: ``id_column``, ``timestamp_column``, ``"target_name"``,
        ``"predictions"`` (the median) and one float32 column per level named ``str(level)``;
        ids in order of first appearance, then targets, then time.
        """
        if prediction_length is None:
            prediction_length = self.model_prediction_length
        prediction_length = _positive(prediction_length, "prediction_length")
        targets = list(target) if isinstance(target, (list, tuple)) else [target]
        if validate_inputs:
            _frames.validate(df, future_df, targets, prediction_length, id_column, timestamp_column)
            df = _frames.normalize(df, id_column, timestamp_column)
            if future_df is not None:
                future_df = _frames.normalize(future_df, id_column, timestamp_column, order=pd.unique(df[id_column]))
        tasks = _frames.tasks_from_frames(df, future_df, targets, prediction_length, id_column, timestamp_column)
        future = _frames.future_frame(df, prediction_length, freq, id_column, timestamp_column)
        if validate_inputs and future_df is not None:
            expected = pd.DatetimeIndex(future[timestamp_column])
            given = pd.DatetimeIndex(future_df[timestamp_column])
            if (given != expected).any():
                bad = int(np.argmax(np.asarray(given != expected)))
                raise ValueError(
                    "future_df timestamps do not match the expected prediction timestamps "
                    f"(first at {future[id_column].iloc[bad]!r}: expected {expected[bad]}, found {given[bad]}). "
                    "You can disable this check by setting `validate_inputs=False`"
                )
        options = self._options(prediction_length, batch_size, context_length, cross_learning, **predict_kwargs)
        quantiles, mean = self._quantiles(tasks, options, quantile_levels)
        n_tasks, n_targets = len(tasks), len(targets)
        rows = np.arange(len(future)).reshape(n_tasks, prediction_length)
        result = future.iloc[np.repeat(rows, n_targets, axis=0).ravel()].reset_index(drop=True)
        result["target_name"] = np.tile(np.repeat(targets, prediction_length), n_tasks)
        result["predictions"] = np.stack(mean).ravel()
        flat = np.stack(quantiles).reshape(len(result), len(quantile_levels))
        for i, level in enumerate(quantile_levels):
            result[str(level)] = flat[:, i]
        return result


def _positive(value: Any, name: str) -> int:
    """An integer >= 1, or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, found {value!r}")
    return int(value)
