"""The committed reference fixtures reproduced through Python: the pipeline cases
(`Chronos2Pipeline.predict` / `predict_quantiles`) and the model cases (forward passes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import MODEL_CASES, PIPELINE_CASES, assert_close, pipeline, read_safetensors

CASES = sorted(p for p in PIPELINE_CASES.glob("*.json") if not p.stem.startswith("predict_df"))


def nan_array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float32)


def as_input(task: dict) -> dict:
    """A fixture task as the reference's dict input (categorical covariates as object arrays)."""
    target = np.array([nan_array(row) for row in task["targets"]])
    item = {"target": target}
    past, future = {}, {}
    for c in task["covariates"]:
        read = nan_array if c["kind"] == "numeric" else (lambda v: np.array(v, dtype=object))
        past[c["name"]] = read(c["past"])
        if c["future"] is not None:
            future[c["name"]] = read(c["future"])
    if past:
        item["past_covariates"] = past
    if future:
        item["future_covariates"] = future
    return item


def options(case: dict) -> dict:
    o = case["options"]
    out = {"prediction_length": o["prediction_length"], "batch_size": o["batch_size"],
           "context_length": o["context_length"], "cross_learning": o["cross_learning"]}
    if o["max_output_patches"] is not None:
        out["max_output_patches"] = o["max_output_patches"]
    return out


def test_there_are_pipeline_cases():
    assert len(CASES) >= 13


@pytest.mark.filterwarnings("ignore:.*(unrolled|greater than the model).*")
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_predict_matches_reference(path):
    case = json.loads(path.read_text())
    pipe = pipeline(case["model"])
    inputs = [as_input(t) for t in case["tasks"]]
    preds = pipe.predict(inputs, **options(case))
    assert len(preds) == len(case["expected"]["predict"])
    for i, (ours, ref) in enumerate(zip(preds, case["expected"]["predict"])):
        ref = np.array(ref, dtype=np.float64)
        assert ours.dtype == np.float32
        assert ours.shape == ref.shape, f"task {i}: shape {ours.shape}, reference {ref.shape}"
    assert_close(np.concatenate([p.ravel() for p in preds]),
                 np.concatenate([np.ravel(np.array(r, dtype=np.float64)) for r in case["expected"]["predict"]]),
                 f"{path.stem} predict")
    if "levels" in case:
        quantiles, mean = pipe.predict_quantiles(inputs, quantile_levels=case["levels"], **options(case))
        assert quantiles[0].shape == np.array(case["expected"]["quantiles"][0]).shape
        assert mean[0].shape == np.array(case["expected"]["mean"][0]).shape
        assert_close(np.concatenate([q.ravel() for q in quantiles]),
                     np.concatenate([np.ravel(q) for q in case["expected"]["quantiles"]]), f"{path.stem} quantiles")
        assert_close(np.concatenate([m.ravel() for m in mean]),
                     np.concatenate([np.ravel(m) for m in case["expected"]["mean"]]), f"{path.stem} mean")


def test_array_forms_give_the_dict_results():
    """A list of 1-d arrays and a 3-d array are read as the reference reads them."""
    case = json.loads((PIPELINE_CASES / "tiny-random__univariate.json").read_text())
    pipe = pipeline("tiny-random")
    series = [nan_array(t["targets"][0]) for t in case["tasks"]]
    preds = pipe.predict(series, prediction_length=20)
    assert_close(np.concatenate([p.ravel() for p in preds]),
                 np.concatenate([np.ravel(r) for r in case["expected"]["predict"]]), "list of 1-d arrays")

    case = json.loads((PIPELINE_CASES / "tiny-random__ohlc.json").read_text())
    cube = np.array([[nan_array(row) for row in case["tasks"][0]["targets"]]])
    assert cube.ndim == 3
    (pred,) = pipe.predict(cube, prediction_length=16)
    assert_close(pred, case["expected"]["predict"][0], "3-d array")
    # The same as float64, as a 2-d (one series per row) and a 1-d array.
    (again,) = pipe.predict(cube.astype(np.float64), prediction_length=16)
    np.testing.assert_array_equal(pred, again)
    rows = pipe.predict(cube[0], prediction_length=16)
    assert len(rows) == 4 and rows[0].shape == (1, 21, 16)
    (single,) = pipe.predict(cube[0, 3], prediction_length=16)
    np.testing.assert_allclose(single, rows[3], rtol=1e-6)  # batch of 1 vs 4: float rounding only


MODEL_MANIFEST = json.loads((MODEL_CASES / "manifest.json").read_text())


def grouped_cases():
    """Forward-pass cases `predict` reproduces: no future covariates, each group a
    multivariate task."""
    for case in MODEL_MANIFEST["cases"]:
        if case["F"] is not None or "quantile_preds" not in case["tensors"]:
            continue
        yield case


@pytest.mark.parametrize("case", list(grouped_cases()), ids=lambda c: f"{c['model']}__{c['case']}")
def test_forward_cases_through_predict(case):
    tensors = read_safetensors(MODEL_CASES / case["file"])
    context, groups = tensors["context"], tensors["group_ids"]
    pipe = pipeline(case["model"])
    horizon = case["M"] * pipe.model_output_patch_size
    # One call per group (its rows one multivariate task): groups never see each other, and
    # one call needs one target count. A group with a row that has no observed value is
    # refused with a clear error (nothing to forecast from); the others must match.
    ours, reference = [], []
    for group in dict.fromkeys(groups.tolist()):
        rows = np.flatnonzero(groups == group)
        task = context[rows]
        if np.isnan(task).all(axis=1).any():
            with pytest.raises(ValueError, match="no observed value"):
                pipe.predict([task], prediction_length=horizon, max_output_patches=case["M"])
            continue
        ours.extend(pipe.predict([task], prediction_length=horizon, max_output_patches=case["M"]))
        reference.append(tensors["quantile_preds"][rows])
    assert_close(np.concatenate(ours), np.concatenate(reference), f"{case['model']} {case['case']}")


def test_most_forward_cases_are_covered():
    covered = [c for c in grouped_cases()]
    assert len(covered) >= 14, [c["case"] for c in covered]
