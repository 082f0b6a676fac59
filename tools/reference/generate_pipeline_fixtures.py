"""Records reference `Chronos2Pipeline` outputs (predict, predict_quantiles, predict_df) on the
tiny fixture checkpoints, for the Rust pipeline tests in crates/forecast/tests/.

Run with the reference venv after generate_fixtures.py (it reads the checkpoints that script
writes):

    /work/refvenv/bin/python tools/reference/generate_pipeline_fixtures.py

Each case is one JSON file: the model name, the options, the tasks (NaN written as null) and
the expected outputs. Deterministic (fixed seeds).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from chronos.chronos2 import Chronos2Pipeline

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "crates/chronos2/tests/fixtures/reference/models"
OUT = ROOT / "crates/forecast/tests/fixtures/pipeline"


def nan_to_none(x):
    """Nested lists with NaN replaced by None (JSON null)."""
    if isinstance(x, (list, tuple)):
        return [nan_to_none(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def short(v) -> float:
    """The shortest decimal that reads back as the same float32 (keeps the JSON small)."""
    return float(repr(np.float32(v)).removeprefix("np.float32(").removesuffix(")"))


def as_list(a) -> list:
    if isinstance(a, torch.Tensor):
        a = a.numpy()
    a = np.asarray(a, dtype=np.float32)
    return nan_to_none(np.vectorize(short, otypes=[np.float64])(a).tolist() if a.size else a.tolist())


def series(rng: np.random.Generator, length: int, level: float = 10.0, scale: float = 1.0) -> np.ndarray:
    t = np.arange(length)
    walk = np.cumsum(rng.normal(0, 0.3, length))
    return (level + scale * (np.sin(t / 5.0) + walk)).astype(np.float32)


def task_json(task: dict) -> dict:
    """The Rust-side description of one input (an array or a dict)."""
    if not isinstance(task, dict):
        task = {"target": task}
    target = np.atleast_2d(np.asarray(task["target"], dtype=np.float32))
    covariates = []
    past = task.get("past_covariates", {})
    future = task.get("future_covariates", {})
    for name in past:
        values = np.asarray(past[name])
        kind = "numeric" if np.issubdtype(values.dtype, np.number) else "categorical"
        encode = (lambda v: as_list(v)) if kind == "numeric" else (lambda v: [None if x is None else str(x) for x in v])
        covariates.append(
            {
                "name": name,
                "kind": kind,
                "past": encode(values),
                "future": encode(np.asarray(future[name])) if name in future else None,
            }
        )
    return {"targets": as_list(target), "covariates": covariates}


def run_case(name: str, model: str, tasks: list, prediction_length: int, description: str, levels=None, **kw):
    pipeline = Chronos2Pipeline.from_pretrained(MODELS / model)
    preds = pipeline.predict(tasks, prediction_length=prediction_length, **kw)
    case = {
        "model": model,
        "description": description,
        "options": {
            "prediction_length": prediction_length,
            "batch_size": kw.get("batch_size", 256),
            "context_length": kw.get("context_length"),
            "cross_learning": kw.get("cross_learning", False),
            "max_output_patches": kw.get("max_output_patches"),
        },
        "tasks": [task_json(t) for t in tasks],
        "expected": {"predict": [as_list(p) for p in preds]},
    }
    if levels is not None:
        quantiles, mean = pipeline.predict_quantiles(
            tasks, prediction_length=prediction_length, quantile_levels=levels, **kw
        )
        case["levels"] = levels
        case["expected"]["quantiles"] = [as_list(q) for q in quantiles]
        case["expected"]["mean"] = [as_list(m) for m in mean]
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(case))
    peak = max(float(np.nanmax(np.abs(p.numpy()))) for p in preds)
    print(f"{name:<32} {path.stat().st_size:>7} bytes  max|pred| {peak:.4g}")


def predict_df_case(rng: np.random.Generator):
    """predict_df on a long-format frame with two items, a numeric covariate known in the future
    and a past-only one; also written as CSV for the CLI test."""
    rows, future_rows = [], []
    for item, start, n in [("AAA", "2024-01-01", 60), ("BBB", "2024-01-15", 45)]:
        ts = pd.date_range(start, periods=n + 8, freq="D")
        target = series(rng, n + 8, level=100.0, scale=4.0)
        promo = (rng.random(n + 8) < 0.3).astype(np.float32)
        volume = rng.normal(1000, 50, n + 8).astype(np.float32)
        for i in range(n):
            rows.append({"item_id": item, "timestamp": ts[i], "target": target[i], "promo": promo[i], "volume": volume[i]})
        for i in range(n, n + 8):
            future_rows.append({"item_id": item, "timestamp": ts[i], "promo": promo[i]})
    df = pd.DataFrame(rows)
    future_df = pd.DataFrame(future_rows)
    pipeline = Chronos2Pipeline.from_pretrained(MODELS / "tiny-random")
    levels = [0.1, 0.5, 0.9]
    cases = [
        ("predict_df", df, future_df,
         "predict_df: 2 items, numeric known-future covariate `promo`, past-only `volume`, H=8"),
        ("predict_df_plain", df[["item_id", "timestamp", "target"]], None,
         "predict_df: 2 items, target only, H=8 (what `chronos2 forecast --target target` reads)"),
    ]
    for name, frame, future, description in cases:
        out = pipeline.predict_df(frame, future_df=future, prediction_length=8, quantile_levels=levels)
        frame.to_csv(OUT / f"{name}_context.csv", index=False)
        if future is not None:
            future.to_csv(OUT / f"{name}_future.csv", index=False)
        expected = {
            "model": "tiny-random",
            "description": description,
            "levels": levels,
            "rows": [
                {
                    "item_id": r["item_id"],
                    "timestamp": r["timestamp"].strftime("%Y-%m-%d"),
                    "target_name": r["target_name"],
                    "predictions": short(r["predictions"]),
                    **{str(q): short(r[str(q)]) for q in levels},
                }
                for _, r in out.iterrows()
            ],
        }
        (OUT / f"{name}.json").write_text(json.dumps(expected))
    print("predict_df cases written")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    rng = np.random.default_rng(42)

    two = [series(rng, 70), series(rng, 45, level=3.0, scale=0.2)]
    for model in ["tiny-default", "tiny-random"]:
        run_case(f"{model}__univariate", model, two, 20, "two univariate tasks of lengths 70 and 45, H=20",
                 levels=[0.1, 0.5, 0.9])

    base = series(rng, 90, level=30000.0, scale=300.0)
    ohlc = np.stack([base, base + 150, base - 150, base + rng.normal(0, 50, 90).astype(np.float32)])
    run_case("tiny-random__ohlc", "tiny-random", [ohlc.astype(np.float32)], 16, "one 4-variate OHLC-like task, H=16")

    cov_tasks = []
    for n in [64, 50, 80]:
        h = 12
        cov_tasks.append(
            {
                "target": series(rng, n),
                "past_covariates": {
                    "temp": rng.normal(20, 5, n).astype(np.float32),
                    "promo": rng.integers(0, 2, n).astype(np.float32),
                    "weather": np.array(rng.choice(["sunny", "rainy", "cloudy"], n), dtype=object),
                },
                "future_covariates": {
                    "promo": rng.integers(0, 2, h).astype(np.float32),
                    "weather": np.array(rng.choice(["sunny", "rainy", "snow"], h), dtype=object),
                },
            }
        )
    cov_tasks[1]["past_covariates"]["weather"][3] = None  # a missing category
    for model in ["tiny-default", "tiny-random"]:
        run_case(f"{model}__covariates", model, cov_tasks, 12,
                 "3 tasks: past-only numeric `temp`, known-future numeric `promo` and categorical `weather` "
                 "(target-encoded, unseen future category `snow`, one missing), H=12")

    mv_cov = []
    for n in [40, 56]:
        mv_cov.append(
            {
                "target": np.stack([series(rng, n), series(rng, n, level=5.0)]),
                "past_covariates": {"kind": np.array(rng.choice(["a", "b"], n), dtype=object)},
                "future_covariates": {"kind": np.array(rng.choice(["a", "b", "c"], 10), dtype=object)},
            }
        )
    run_case("tiny-random__multivariate_categorical", "tiny-random", mv_cov, 10,
             "2 bivariate tasks with a known-future categorical covariate (ordinal codes), H=10")

    overshoot = [np.stack([series(rng, n) for _ in range(4)]) for n in [30, 60, 45]]
    run_case("tiny-random__batch_overshoot", "tiny-random", overshoot, 16,
             "3 tasks of 4 variates with batch_size 6 (batches of 8 then 4 rows)", batch_size=6)

    cross = [series(rng, n) for n in [33, 70, 51]]
    run_case("tiny-random__cross_learning", "tiny-random", cross, 16,
             "3 univariate tasks, cross_learning with batch_size 2 (two batches, one group each)",
             batch_size=2, cross_learning=True)

    long = [series(rng, 300), series(rng, 130)]
    run_case("tiny-random__long_context", "tiny-random", long, 16,
             "contexts of 300 and 130 steps, longer than the model's context_length 100")
    run_case("tiny-random__user_context_length", "tiny-random", long, 16,
             "user context_length 40", context_length=40)

    unroll_tasks = [series(rng, 70), series(rng, 30, level=2.0)]
    run_case("tiny-random__unroll", "tiny-random", unroll_tasks, 120,
             "H=120 > 48 steps per pass: 3 rounds of the multi-quantile unroll; user context_length 60 grows to 100",
             levels=[0.005, 0.25, 0.5, 0.995], context_length=60)
    run_case("tiny-default__unroll_max_patches", "tiny-default", [series(rng, 100)], 80,
             "max_output_patches 2, H=80 (spec 4.3 check)", max_output_patches=2)
    unroll_cov = [
        {
            "target": series(rng, 64),
            "past_covariates": {"x": rng.normal(0, 1, 64).astype(np.float32)},
            "future_covariates": {"x": rng.normal(0, 1, 70).astype(np.float32)},
        }
    ]
    unroll_cov[0]["future_covariates"]["x"][5:9] = np.nan
    run_case("tiny-random__unroll_covariates", "tiny-random", unroll_cov, 70,
             "H=70 with a known-future covariate (partly NaN) sliding through the unroll")

    predict_df_case(rng)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
