#!/usr/bin/env python3
"""CPU peers for `chronos2 bench`: the reference Chronos-2 in PyTorch eager, torch.compile,
ONNX Runtime fp32 and ONNX Runtime int8, timed on the `chronos2 bench` shape cases A-F.

What it measures
----------------
The reference model (Amazon's `chronos-forecasting`, class `Chronos2Model`) run five ways on
the CPU, on the shape cases of `chronos2 bench` (crates/bench/src/runner.rs, `SHAPE_CASES`):

    case  rows  context  horizon  groups
    A        1      512       16  each row its own group
    B        1     2048       64  (4 output patches)
    C       32      512       16  each row its own group
    D        4      512       16  one group (group_ids all 0)
    E      256      512       16  each row its own group
    F      256      512       16  one group (group_ids all 0)

Engines:

* `torch`: PyTorch eager, the reference as it is, under `torch.inference_mode()`;
* `torch-compile`: `torch.compile` of the same call, default mode (inductor), compiled afresh
  for each case (`torch._dynamo.reset()` first, so each case gets its own static-shape code and
  the figures do not depend on the order of the cases); its first call (the compilation) is
  reported apart from the steady state. The inductor cache is a fresh temporary folder unless
  TORCHINDUCTOR_CACHE_DIR is set, so the compile time is a cold one;
* `ort-fp32`: ONNX Runtime, the model exported with the dynamo exporter;
* `ort-int8`: that graph quantized with ONNX Runtime's `quantize_dynamic`;
* `ort-int8-pre`: the same after ORT's recommended pre-processing (`quant_pre_process`).

Two intra-op threads and one inter-op thread everywhere (ORT: CPU execution provider,
sequential, all graph optimisations). The forward timed is the one the pipeline calls,
`model(context=..., group_ids=..., num_output_patches=m).quantile_preds`: instance
normalisation, patching, the 12-layer encoder, the output head and the inverse normalisation.

Timing: per engine and case, a first call (timed and reported on its own: the compilation for
torch.compile, the first run of a session for ORT), then W untimed warm-up calls, then the
median of N timed calls. N and W per case default to a plan that keeps a full sitting of all
engines and cases near a quarter of an hour on 2 cores (see DEFAULT_RUNS / DEFAULT_WARMUP).

Steps
-----
1. Load the checkpoint directory with `Chronos2Pipeline.from_pretrained` (fp32, CPU).
2. ONNX only: the reference's group-mask `einsum("qb, bt -> qbt", bool, float)` becomes an
   equivalent broadcast multiply while exporting (ONNX Runtime refuses the Einsum the exporter
   makes of it), after checking on random input (groups and missing values included) that the
   torch outputs before and after the change agree to 1e-6. The change is undone after the
   export: the torch engines run the reference unchanged.
3. Export with `torch.onnx.export(..., dynamo=True)`, batch dimension dynamic, one graph per
   (context length, output patches): 512 x 1 serves A, C, D, E, F; 2048 x 4 serves B.
4. Quantize with `onnxruntime.quantization.quantize_dynamic`: weights QInt8, symmetric, per
   output channel; activations QUInt8 (the only choice dynamic quantization offers; U8S8 is what
   ORT recommends on x86-64), `reduce_range=False` (ORT advises 7-bit weights only on x86
   machines *without* VNNI; pass `--reduce-range` there). Two int8 models per graph:
   * `int8`: `quantize_dynamic` on the exported graph as it is. It quantizes every linear layer
     except the input patch embedding (its 3 weights reach their MatMuls through a Transpose the
     exporter leaves in, and `quantize_dynamic` only quantizes MatMuls with a constant B);
   * `int8-pre`: `quant_pre_process` (shape inference and basic graph optimisation, which folds
     those Transposes) first, then the same call: all 129 linear layers quantized.
5. Check each graph on random N(0, 1) input (6 series, 3 groups, NaNs) before timing: ORT fp32
   against PyTorch (stops if |diff| / series scale >= 1e-4) and each int8 graph against fp32.
6. Time the engines on the cases; the first call's outputs of every engine are checked too
   (ORT fp32 and torch.compile against PyTorch eager, int8 against ORT fp32).
7. Print a Markdown table and write results.json (`median_ms[engine][case]`, plus first call,
   min, max, N, W and the checks).

The inputs are the synthetic price path of `chronos2 bench` (`ShapeCase::input`): row r, step
t: 100 + 3 sin(0.05 (t + 13 r)) + 0.01 t, computed in float32.

Set-up: the reference venv with the ONNX packages (see tools/onnx/README.md):
    /work/refvenv/bin/pip install chronos-forecasting==2.3.2 onnx onnxscript onnxruntime

Usage
-----
    /work/refvenv/bin/python tools/onnx/ort_peer.py --model /work/tmp/rust-real --out /work/tmp/onnx

The .onnx files (about 480 MB fp32 and 120-130 MB int8 per graph) go to --out and are reused on
later runs (pass --force-export to redo them). Keep --out outside the repository.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# A cold inductor cache unless the caller chose one (set before torch is imported).
if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    _INDUCTOR_CACHE = tempfile.mkdtemp(prefix="ort_peer_inductor_")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _INDUCTOR_CACHE
    atexit.register(shutil.rmtree, _INDUCTOR_CACHE, ignore_errors=True)
    INDUCTOR_CACHE_NOTE = "cold (fresh temporary TORCHINDUCTOR_CACHE_DIR)"
else:
    INDUCTOR_CACHE_NOTE = f"TORCHINDUCTOR_CACHE_DIR={os.environ['TORCHINDUCTOR_CACHE_DIR']} (may be warm)"

try:
    import numpy as np
    import torch
except ImportError as exc:  # pragma: no cover - set-up error path
    sys.exit(f"error: {exc}. Run this with the venv described at the top of {__file__}.")

PATCH = 16  # input and output patch size of every Chronos-2 checkpoint

CASES = {
    # name: (rows, context, horizon, grouped) -- `SHAPE_CASES` of crates/bench/src/runner.rs.
    # grouped: all rows in one group (group_ids all 0); else each row its own group.
    "A": (1, 512, 16, False),
    "B": (1, 2048, 64, False),
    "C": (32, 512, 16, False),
    "D": (4, 512, 16, True),
    "E": (256, 512, 16, False),
    "F": (256, 512, 16, True),
}
# Timed calls (the median is reported) and untimed warm-up calls after the first call, per case.
# With E and F at ~20-30 s a call in PyTorch on 2 cores, these keep the whole sitting of all
# engines near 15 minutes.
DEFAULT_RUNS = {"A": 20, "B": 5, "C": 5, "D": 10, "E": 3, "F": 3}
DEFAULT_WARMUP = {"A": 3, "B": 1, "C": 1, "D": 2, "E": 0, "F": 0}
# Engine key -> column title.
ENGINES = {
    "torch": "PyTorch eager",
    "torch-compile": "torch.compile",
    "ort-fp32": "ORT fp32",
    "ort-int8": "ORT int8",
    "ort-int8-pre": "ORT int8, pre-processed",
}
ORT_KINDS = ("fp32", "int8", "int8-pre")
# Batch size of the example input given to the exporter. Not 1: torch.export specialises a
# dimension whose example size is 1, and the batch dimension must stay dynamic.
EXPORT_BATCH = 4


def output_patches(horizon: int) -> int:
    return -(-horizon // PATCH)


def graph_key(case: str) -> tuple[int, int]:
    """The ONNX graph a case runs on: (context length, output patches)."""
    _, context, horizon, _ = CASES[case]
    return context, output_patches(horizon)


def per_case(text: str, default: dict[str, int], what: str, p: argparse.ArgumentParser) -> dict[str, int]:
    """`7` (every case) or `A=20,E=2` (those cases; the others keep their default)."""
    out = dict(default)
    text = text.strip()
    if not text:
        return out
    if "=" not in text:
        try:
            return {c: int(text) for c in out}
        except ValueError:
            p.error(f"--{what}: expected an integer or CASE=N,...; got {text!r}")
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip().upper()
        if name not in CASES:
            p.error(f"--{what}: unknown case {name!r}")
        try:
            out[name] = int(value)
        except ValueError:
            p.error(f"--{what}: {item!r} is not CASE=N")
    return out


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(
            "Time the reference Chronos-2 on the `chronos2 bench` cases A-F in PyTorch eager, "
            "torch.compile, ONNX Runtime fp32 and ONNX Runtime int8 (quantize_dynamic), after "
            "exporting, quantizing and checking the ONNX graphs against PyTorch."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model", required=True, type=Path, help="checkpoint directory (config.json + model.safetensors)"
    )
    p.add_argument(
        "--out", required=True, type=Path, help="folder for the .onnx files and results.json (outside the repo)"
    )
    p.add_argument("--cases", default="A,B,C,D,E,F", help=f"comma-separated cases to time, from {', '.join(CASES)}")
    p.add_argument(
        "--runs",
        default="",
        help="timed calls per case: one integer for all, or CASE=N,... overriding the defaults "
        + ",".join(f"{c}={n}" for c, n in DEFAULT_RUNS.items()),
    )
    p.add_argument(
        "--warmup",
        default="",
        help="untimed warm-up calls after the (separately timed) first call: one integer for all, "
        "or CASE=N,... overriding the defaults " + ",".join(f"{c}={n}" for c, n in DEFAULT_WARMUP.items()),
    )
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for torch and ORT (inter-op is 1)")
    p.add_argument(
        "--engines", default=",".join(ENGINES), help=f"comma-separated engines to time, from {', '.join(ENGINES)}"
    )
    p.add_argument(
        "--force-export", action="store_true", help="re-export and re-quantize even if the .onnx files exist"
    )
    p.add_argument(
        "--reduce-range",
        action="store_true",
        help="quantize weights to 7 bits (ORT's advice for x86 CPUs with AVX2/AVX-512 but no VNNI)",
    )
    p.add_argument("--skip-timing", action="store_true", help="export, quantize and check only")
    args = p.parse_args()
    args.cases = [c.strip().upper() for c in args.cases.split(",") if c.strip()]
    for c in args.cases:
        if c not in CASES:
            p.error(f"unknown case {c!r}; this script knows {', '.join(CASES)}")
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in args.engines:
        if e not in ENGINES:
            p.error(f"unknown engine {e!r}; choose from {', '.join(ENGINES)}")
    args.runs = per_case(args.runs, DEFAULT_RUNS, "runs", p)
    args.warmup = per_case(args.warmup, DEFAULT_WARMUP, "warmup", p)
    if not (args.model / "config.json").is_file():
        p.error(f"{args.model} has no config.json; --model must be a Chronos-2 checkpoint directory")
    if min(args.runs.values()) < 1 or min(args.warmup.values()) < 0 or args.threads < 1:
        p.error("runs must be >= 1, warm-up >= 0, threads >= 1")
    return args


# --------------------------------------------------------------------------------------------
# The model and the einsum workaround
# --------------------------------------------------------------------------------------------


def load_model(model_dir: Path):
    """The reference Chronos2Model, fp32, CPU, eval mode, loaded the way the pipeline loads it."""
    try:
        from chronos import Chronos2Pipeline
    except ImportError as exc:
        sys.exit(f"error: cannot import chronos ({exc}); is chronos-forecasting 2.3.2 in this venv?")
    pipeline = Chronos2Pipeline.from_pretrained(str(model_dir), device_map="cpu", dtype=torch.float32)
    model = pipeline.model.eval()
    return model


class Forward(torch.nn.Module):
    """The call `Chronos2Pipeline._predict_step` makes, as a module with tensor inputs only.

    context: (batch, context_length) float32, NaN = missing; group_ids: (batch,) int64.
    Returns the quantile forecasts, (batch, num_quantiles, num_output_patches * patch_size).
    """

    def __init__(self, model, num_output_patches: int):
        super().__init__()
        self.model = model
        self.num_output_patches = num_output_patches

    def forward(self, context: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
        return self.model(
            context=context, group_ids=group_ids, num_output_patches=self.num_output_patches
        ).quantile_preds


def _group_time_mask_without_einsum(group_ids, attention_mask, floating_type):
    """`Chronos2Encoder._construct_and_invert_group_time_mask` with the einsum as a multiply.

    The reference computes `einsum("qb, bt -> qbt", group_mask, attention_mask)` with a bool
    `group_mask`; the dynamo exporter turns that into an ONNX Einsum over a bool input, which
    ONNX Runtime refuses to load. Casting the 0/1 mask to the float type and broadcasting gives
    the same products (all exact: 0 or the mask value). The rest is the reference's code, with
    the einops rearrange written as a permute.
    """
    group_mask = group_ids[:, None] == group_ids[None, :]  # (q, b) bool
    group_time_mask = group_mask.to(attention_mask.dtype)[:, :, None] * attention_mask[None, :, :]  # (q, b, t)
    if torch.is_floating_point(group_time_mask):
        floating_type = group_time_mask.dtype
    group_time_mask = group_time_mask.permute(2, 0, 1).unsqueeze(1)  # "q b t -> t 1 q b"
    return (1.0 - group_time_mask) * torch.finfo(floating_type).min


@contextlib.contextmanager
def einsum_free():
    """The einsum-free group mask in the reference module, for the duration of the block."""
    from chronos.chronos2.model import Chronos2Encoder

    original = Chronos2Encoder.__dict__["_construct_and_invert_group_time_mask"]
    Chronos2Encoder._construct_and_invert_group_time_mask = staticmethod(_group_time_mask_without_einsum)
    try:
        yield
    finally:
        Chronos2Encoder._construct_and_invert_group_time_mask = original


def check_patch(model) -> None:
    """Torch outputs before and after the einsum change, on random input with groups and NaNs."""
    gen = torch.Generator().manual_seed(19)
    context = torch.randn(6, 512, generator=gen) * 5.0 + 20.0
    context[1, :100] = float("nan")  # left padding, as the pipeline pads short series
    context[4, 300:310] = float("nan")  # a gap inside the context
    group_ids = torch.tensor([0, 0, 1, 2, 2, 2])
    fwd = Forward(model, 1)
    with torch.inference_mode():
        before = fwd(context, group_ids)
        with einsum_free():
            after = fwd(context, group_ids)
    diff = (before - after).abs().max().item()
    print(f"einsum change: torch before vs after on random input (6 series, 3 groups, NaNs): max |diff| = {diff:.3g}")
    if not diff <= 1e-6:
        sys.exit("error: the einsum-free group mask changes the outputs; not exporting")


# --------------------------------------------------------------------------------------------
# Inputs, export, quantization
# --------------------------------------------------------------------------------------------


def bench_input(rows: int, context: int, grouped: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`ShapeCase::input` of crates/bench/src/runner.rs without data: a synthetic price path per
    row, computed in float32 as the Rust code does; group_ids all 0 if `grouped`, else each row
    its own group."""
    t = np.arange(context, dtype=np.float32)
    out = []
    for r in range(rows):
        phase = (np.arange(context) + 13 * r).astype(np.float32) * np.float32(0.05)
        out.append(np.float32(100.0) + np.sin(phase) * np.float32(3.0) + t * np.float32(0.01))
    group_ids = np.zeros(rows, dtype=np.int64) if grouped else np.arange(rows, dtype=np.int64)
    return np.stack(out).astype(np.float32), group_ids


def case_input(case: str) -> tuple[np.ndarray, np.ndarray]:
    rows, context, _, grouped = CASES[case]
    return bench_input(rows, context, grouped)


def graph_paths(out: Path, key: tuple[int, int], reduce_range: bool) -> dict[str, Path]:
    context, m = key
    stem = f"chronos2_c{context}_m{m}"
    rr = "_rr" if reduce_range else ""
    return {
        "fp32": out / f"{stem}_fp32.onnx",
        "int8": out / f"{stem}_int8{rr}.onnx",
        "int8-pre": out / f"{stem}_int8_pre{rr}.onnx",
    }


def export_onnx(model, path: Path, context_len: int, num_output_patches: int) -> None:
    """Dynamo export of Forward(model, num_output_patches), batch dynamic, context fixed."""
    fwd = Forward(model, num_output_patches).eval()
    context, group_ids = bench_input(EXPORT_BATCH, context_len)
    context[1, :64] = np.nan  # let the example exercise the missing-value path too
    batch = torch.export.Dim("batch", min=1, max=4096)
    t0 = time.perf_counter()
    with torch.no_grad(), einsum_free():  # not inference_mode: torch.export rejects inference tensors
        program = torch.onnx.export(
            fwd,
            (torch.from_numpy(context), torch.from_numpy(group_ids)),
            dynamo=True,
            input_names=["context", "group_ids"],
            output_names=["quantile_preds"],
            dynamic_shapes={"context": {0: batch}, "group_ids": {0: batch}},
            optimize=True,
        )
    if program is None:
        sys.exit("error: torch.onnx.export returned no program")
    # One self-contained file (the model is < 2 GB), so quantize_dynamic can read it as is.
    program.save(str(path), external_data=False)
    print(
        f"exported {path} (context {context_len}, {num_output_patches} output patches, batch dynamic; "
        f"{path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )


def quantize(fp32_path: Path, int8_path: Path, reduce_range: bool, preprocess: bool) -> None:
    """quantize_dynamic, per channel, QInt8 weights; with `preprocess`, ORT's quant_pre_process
    (symbolic shape inference + basic graph optimisation) runs first."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    t0 = time.perf_counter()
    source = fp32_path
    if preprocess:
        source = int8_path.with_suffix(".pre.onnx")
        quant_pre_process(str(fp32_path), str(source))
    # quantize_dynamic warns (root logger) that pre-processing is recommended; the `int8` model is
    # deliberately the one without, so keep that warning out of the report.
    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(
        str(source),
        str(int8_path),
        weight_type=QuantType.QInt8,  # symmetric int8 weights; activations are always QUInt8 here
        per_channel=True,
        reduce_range=reduce_range,
    )
    logging.getLogger().setLevel(root_level)
    if preprocess:
        source.unlink()
    steps = "quant_pre_process, then " if preprocess else ""
    print(
        f"quantized {int8_path} ({int8_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s: "
        f"{steps}quantize_dynamic(weight_type=QInt8, per_channel=True, reduce_range={reduce_range}); "
        "activations QUInt8 (dynamic, asymmetric, per tensor) = U8S8"
    )
    import onnx

    ops: dict[str, int] = {}
    for node in onnx.load(str(int8_path), load_external_data=False).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    int_ops = ("MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul")
    quantized = {k: v for k, v in ops.items() if k in int_ops}
    print(
        f"  {quantized}; float MatMul left: {ops.get('MatMul', 0)} "
        "(4 per layer are the attention products, activation x activation)",
        flush=True,
    )


def has_vnni() -> bool | None:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return "avx512_vnni" in flags or "avx_vnni" in flags


def cpu_model() -> str:
    """'model name (family F, model M)' from /proc/cpuinfo, or the platform's machine string."""
    try:
        info = dict(
            line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines()[:30] if ":" in line
        )
        info = {k.strip(): v.strip() for k, v in info.items()}
        return f"{info['model name']} (family {info['cpu family']}, model {info['model']})"
    except (OSError, KeyError):
        return platform.machine()


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types
        sys.exit(f"error: ONNX Runtime cannot load {path}: {exc}")


def ort_run(session, context: np.ndarray, group_ids: np.ndarray) -> np.ndarray:
    return session.run(["quantile_preds"], {"context": context, "group_ids": group_ids})[0]


def compare(label: str, ref: np.ndarray, got: np.ndarray, context: np.ndarray) -> dict:
    """Print and return how far `got` is from `ref` (both (batch, quantiles, horizon)):

    * max_abs: the largest absolute difference;
    * max_rel_scale / mean_rel_scale: the largest and the mean absolute difference relative to
      the series' scale (the standard deviation of its observed context, the instance
      normalisation's scale), the measure `chronos2 compare` uses;
    * rel_l2: ||got - ref|| / ||ref - level|| per series (level = mean of the observed context),
      i.e. the relative error of the forecast's shape once the level is taken out, worst series.
    """
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    ctx = context.astype(np.float64)
    batch = ref.shape[0]
    diff = np.abs(ref64 - got64).reshape(batch, -1)
    scale = np.nanstd(ctx, axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    level = np.nanmean(ctx, axis=1)
    shape_norm = np.linalg.norm((ref64 - level[:, None, None]).reshape(batch, -1), axis=1)
    rel_l2 = np.linalg.norm(diff, axis=1) / np.where(shape_norm > 0, shape_norm, 1.0)
    result = {
        "max_abs": float(diff.max()),
        "max_rel_scale": float((diff.max(axis=1) / scale).max()),
        "mean_rel_scale": float((diff.mean(axis=1) / scale).mean()),
        "rel_l2": float(rel_l2.max()),
    }
    print(
        f"  {label:<28} max |diff| {result['max_abs']:.3g}; |diff| / series scale: "
        f"max {result['max_rel_scale']:.3g}, mean {result['mean_rel_scale']:.3g}; "
        f"relative L2 error of (forecast - level): {result['rel_l2']:.3g}",
        flush=True,
    )
    return result


# Limits of the checks. fp32 engines (ORT fp32, torch.compile) against torch eager: |diff| /
# series scale below 1e-4. int8 against ORT fp32: a sanity bound, not accuracy.
FP32_LIMIT = 1e-4
INT8_LIMITS = (0.05, 0.1)  # max |diff| / scale, relative L2 error of (forecast - level)


def check_outputs(outputs: dict[str, np.ndarray], context: np.ndarray) -> tuple[dict, list[str]]:
    """Compare the engines' outputs on one input: fp32 engines against torch eager, int8 ones
    against ORT fp32. Returns the figures and the list of failures."""
    entry, failures = {}, []
    fp32_ref = outputs.get("torch")
    for key in ("ort-fp32", "torch-compile"):
        if key in outputs and fp32_ref is not None:
            got = compare(f"{ENGINES[key]} vs PyTorch eager", fp32_ref, outputs[key], context)
            entry[f"{key}_vs_torch"] = got
            if not got["max_rel_scale"] < FP32_LIMIT:
                failures.append(f"{key} disagrees with PyTorch eager (|diff| / scale {got['max_rel_scale']:.3g})")
    int8_ref = outputs.get("ort-fp32")
    for key in ("ort-int8", "ort-int8-pre"):
        if key in outputs and int8_ref is not None:
            got = compare(f"{ENGINES[key]} vs ORT fp32", int8_ref, outputs[key], context)
            entry[f"{key}_vs_ort-fp32"] = got
            if not (got["max_rel_scale"] < INT8_LIMITS[0] and got["rel_l2"] < INT8_LIMITS[1]):
                print(
                    f"  WARNING: {key} is far from fp32 (limits: {INT8_LIMITS[0]} of the scale, "
                    f"{INT8_LIMITS[1]} relative L2)"
                )
    return entry, failures


def verify_graphs(model, sessions: dict, context_len: int, num_output_patches: int) -> dict:
    """Each ORT graph of one (context, output patches) on random N(0, 1) input with groups and
    NaNs: fp32 against torch eager (exits if they disagree), int8 against fp32."""
    gen = np.random.default_rng(19)
    # Level 0: the forecasts of a random checkpoint stay within ~0.003 of the scale from the level,
    # so at level 100 float32 rounding of the output alone is ~1 % of (forecast - level).
    context = gen.standard_normal((6, context_len)).astype(np.float32)
    context[1, :100] = np.nan
    context[4, 300:310] = np.nan
    group_ids = np.array([0, 0, 1, 2, 2, 2], dtype=np.int64)
    print(f"check the graphs for context {context_len} x {num_output_patches} output patches on random N(0,1) input, 3 groups, NaNs:")
    with torch.inference_mode():
        outputs = {"torch": Forward(model, num_output_patches)(torch.from_numpy(context), torch.from_numpy(group_ids)).numpy()}
    outputs.update({f"ort-{k}": ort_run(s, context, group_ids) for k, s in sessions.items()})
    entry, failures = check_outputs(outputs, context)
    if failures:
        sys.exit("error: " + "; ".join(failures))
    return entry


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def fmt_ms(ms: float) -> str:
    return f"{ms / 1e3:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def time_engine(call, warmup: int, runs: int) -> tuple[np.ndarray, dict]:
    """First call (timed on its own, its output kept), `warmup` untimed calls, `runs` timed."""
    t0 = time.perf_counter()
    first_out = call()
    first = (time.perf_counter() - t0) * 1e3
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    return first_out, {
        "first_ms": first,
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "runs": runs,
        "warmup": warmup,
    }


def main() -> None:
    args = parse_args()
    repo = Path(__file__).resolve().parents[2]
    if args.out.resolve().is_relative_to(repo):
        sys.exit(f"error: --out {args.out} is inside the repository; the .onnx files are ~1.5 GB")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    # Before torch starts its thread pools (set_num_interop_threads fails after that).
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    ort_engines = [e for e in args.engines if e.startswith("ort-")]
    ort = None
    if ort_engines:
        try:
            import onnxruntime as ort
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as exc:
            sys.exit(f"error: {exc}; install onnx, onnxscript, onnxruntime (see tools/onnx/README.md)")

    vnni = has_vnni()
    if ort_engines and vnni is False and not args.reduce_range:
        print("note: this CPU has no VNNI; ORT advises --reduce-range for U8S8 here (saturation)")

    model = load_model(args.model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.model} ({n_params:,} parameters)", flush=True)
    max_patches = model.chronos_config.max_output_patches
    for case in args.cases:
        if output_patches(CASES[case][2]) > max_patches:
            sys.exit(f"error: case {case} needs {output_patches(CASES[case][2])} output patches; the model allows {max_patches}")

    # The ONNX graphs: one per (context length, output patches) among the cases.
    sessions: dict[tuple[int, int], dict[str, object]] = {}
    graph_checks: dict[str, dict] = {}
    if ort_engines:
        check_patch(model)
        kinds = [e.removeprefix("ort-") for e in ort_engines]
        if ("int8" in kinds or "int8-pre" in kinds) and "fp32" not in kinds:
            kinds.insert(0, "fp32")  # the int8 graphs are checked against it
        for key in dict.fromkeys(graph_key(c) for c in args.cases):
            paths = graph_paths(args.out, key, args.reduce_range)
            if args.force_export or not paths["fp32"].exists():
                export_onnx(model, paths["fp32"], *key)
            else:
                print(f"reusing {paths['fp32']} (--force-export to redo)")
            for kind in ("int8", "int8-pre"):
                if kind not in kinds:
                    continue
                if args.force_export or not paths[kind].exists():
                    quantize(paths["fp32"], paths[kind], args.reduce_range, preprocess=kind == "int8-pre")
                else:
                    print(f"reusing {paths[kind]} (--force-export to redo)")
            sessions[key] = {kind: ort_session(paths[kind], args.threads) for kind in kinds}
            graph_checks[f"random N(0,1), context {key[0]}, {key[1]} output patches"] = verify_graphs(
                model, sessions[key], *key
            )

    if args.skip_timing:
        print(f"checks done in {time.perf_counter() - started:.0f} s (--skip-timing)")
        return

    print(f"inductor cache for torch.compile: {INDUCTOR_CACHE_NOTE}")
    plan = ", ".join(f"{c}: 1 + {args.warmup[c]} + {args.runs[c]}" for c in args.cases)
    print(f"calls per engine (first + warm-up + timed): {plan}", flush=True)
    timings: dict[str, dict[str, dict]] = {e: {} for e in args.engines}
    case_checks: dict[str, dict] = {}
    failures: list[str] = []
    for case in args.cases:
        rows, ctx_len, horizon, grouped = CASES[case]
        m = output_patches(horizon)
        context, group_ids = case_input(case)
        t_ctx, t_gid = torch.from_numpy(context), torch.from_numpy(group_ids)
        outputs: dict[str, np.ndarray] = {}
        for key in args.engines:
            if key == "torch":
                fwd = Forward(model, m)

                def call(fwd=fwd):
                    with torch.inference_mode():
                        return fwd(t_ctx, t_gid)

            elif key == "torch-compile":
                torch._dynamo.reset()  # a fresh compilation for this case's shapes
                compiled = torch.compile(Forward(model, m))

                def call(compiled=compiled):
                    with torch.inference_mode():
                        return compiled(t_ctx, t_gid)

            else:
                session = sessions[(ctx_len, m)][key.removeprefix("ort-")]

                def call(session=session):
                    return ort_run(session, context, group_ids)

            try:
                out, t = time_engine(call, args.warmup[case], args.runs[case])
            except Exception as exc:  # noqa: BLE001 - report and go on with the other engines
                msg = f"case {case} {ENGINES[key]} failed: {type(exc).__name__}: {str(exc)[:400]}"
                print(msg, flush=True)
                failures.append(msg)
                continue
            outputs[key] = out.numpy() if isinstance(out, torch.Tensor) else out
            timings[key][case] = t
            print(
                f"case {case} {ENGINES[key]}: median {fmt_ms(t['median_ms'])} (min {fmt_ms(t['min_ms'])}, "
                f"max {fmt_ms(t['max_ms'])}; {t['runs']} runs after the first call, {fmt_ms(t['first_ms'])}, "
                f"and {t['warmup']} warm-up)",
                flush=True,
            )
        if len(outputs) > 1:
            print(f"case {case}: the engines' first-call outputs:")
            case_checks[case], bad = check_outputs(outputs, context)
            failures += [f"case {case}: {b}" for b in bad]
        if "torch-compile" in args.engines:
            torch._dynamo.reset()  # free the compiled code of this case

    # The tables.
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    versions = {"torch": torch.__version__, "python": platform.python_version()}
    try:
        from importlib.metadata import version

        versions["chronos-forecasting"] = version("chronos-forecasting")
        versions["transformers"] = version("transformers")
    except Exception:  # noqa: BLE001
        pass
    if ort is not None:
        import onnx
        import onnxscript

        versions.update(onnxruntime=ort.__version__, onnx=onnx.__version__, onnxscript=onnxscript.__version__)
    print()
    print(
        f"Reference Chronos-2 ({n_params:,} parameters, {args.model}), CPU, {args.threads} intra-op threads, "
        f"1 inter-op; median (min) of N calls after a first call and W warm-up calls; {cpu_model()}, "
        f"VNNI: {vnni}; " + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    print()
    header = ["case", "shape", "N", "W"] + [ENGINES[k] for k in args.engines]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for case in args.cases:
        rows, ctx_len, horizon, grouped = CASES[case]
        groups = "one group" if grouped else ("" if rows == 1 else "own groups")
        shape = f"{rows} x {ctx_len}, h {horizon}" + (f", {groups}" if groups else "")
        row = [case, shape, str(args.runs[case]), str(args.warmup[case])]
        for k in args.engines:
            t = timings[k].get(case)
            row.append(f"{fmt_ms(t['median_ms'])} ({fmt_ms(t['min_ms'])})" if t else "failed")
        print("| " + " | ".join(row) + " |")
    print()
    print("First call of each engine (torch.compile: the compilation, inductor cache " + INDUCTOR_CACHE_NOTE + "):")
    print()
    header = ["case"] + [ENGINES[k] for k in args.engines]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for case in args.cases:
        row = [case] + [fmt_ms(timings[k][case]["first_ms"]) if case in timings[k] else "failed" for k in args.engines]
        print("| " + " | ".join(row) + " |")
    print()
    print(f"Command: `{cmd}` ({time.perf_counter() - started:.0f} s)")
    cases = ",".join(args.cases)
    print(f"Rust side, same shapes: `chronos2 bench --model {args.model} --modes compiled --cases {cases}`")

    results = {
        "command": cmd,
        "model": str(args.model),
        "parameters": n_params,
        "threads": args.threads,
        "cpu": cpu_model(),
        "vnni": vnni,
        "versions": versions,
        "cases": {c: dict(zip(("rows", "context", "horizon", "grouped"), CASES[c])) for c in args.cases},
        "median_ms": {k: {c: round(t["median_ms"], 3) for c, t in timings[k].items()} for k in args.engines},
        "timings": timings,
        "torch_compile": {"mode": "default", "per_case": "torch._dynamo.reset() then torch.compile", "inductor_cache": INDUCTOR_CACHE_NOTE},
        "quantization": {
            "call": "quantize_dynamic",
            "weight_type": "QInt8 (symmetric)",
            "activation_type": "QUInt8 (dynamic, asymmetric, per tensor)",
            "per_channel": True,
            "reduce_range": args.reduce_range,
            "int8-pre": "onnxruntime.quantization.shape_inference.quant_pre_process first",
        },
        "checks": {"graphs": graph_checks, "cases": case_checks},
        "failures": failures,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results written to {args.out / 'results.json'}")
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
