#!/usr/bin/env python3
"""ONNX Runtime peer for `chronos2 bench`: export, quantize and time the reference Chronos-2.

What it measures
----------------
The reference model (Amazon's `chronos-forecasting`, class `Chronos2Model`) run four ways on
the CPU, on the two shapes of `chronos2 bench` that matter for the int8 comparison:

* case A: 1 series x context 512, horizon 16 (one output patch);
* case C: 32 series x context 512, horizon 16 (one output patch), each series its own group.

Engines: PyTorch eager (the reference as it is, under torch.inference_mode), ONNX Runtime fp32
(the model exported with the dynamo exporter) and ONNX Runtime int8 (that graph quantized with
ONNX Runtime's `quantize_dynamic`, with and without ORT's pre-processing). Each timing is the
median of N runs after a few warm-up runs, with two intra-op threads and one inter-op thread
everywhere (the ORT CPU execution provider with all graph optimisations). The forward timed is
the one the pipeline calls, `model(context=..., group_ids=..., num_output_patches=1)
.quantile_preds`: instance normalisation, patching, the 12-layer encoder, the output head and
the inverse normalisation.

Steps
-----
1. Load the checkpoint directory with `Chronos2Pipeline.from_pretrained` (fp32, CPU).
2. Replace the reference's group-mask `einsum("qb, bt -> qbt", bool, float)` by an equivalent
   broadcast multiply (ONNX Runtime refuses to load the Einsum the exporter makes of it), after
   checking on random input (groups and missing values included) that the torch outputs before
   and after the patch agree to 1e-6.
3. Export with `torch.onnx.export(..., dynamo=True)`, batch dimension dynamic.
4. Check ORT fp32 against PyTorch on the same inputs (largest absolute difference, and that
   difference relative to the series' scale, i.e. the standard deviation of its context).
5. Quantize with `onnxruntime.quantization.quantize_dynamic`: weights QInt8, symmetric, per
   output channel; activations QUInt8 (the only choice dynamic quantization offers; U8S8 is what
   ORT recommends on x86-64), `reduce_range=False` (ORT advises 7-bit weights only on x86
   machines *without* VNNI; pass `--reduce-range` there). Two int8 models are made:
   * `int8`: `quantize_dynamic` on the exported graph as it is. It quantizes every linear layer
     except the input patch embedding (its 3 weights reach their MatMuls through a Transpose the
     exporter leaves in, and `quantize_dynamic` only quantizes MatMuls with a constant B);
   * `int8-pre`: ORT's recommended pre-processing first (`quant_pre_process`: shape inference
     and basic graph optimisation, which folds those Transposes), then the same call: all 129
     linear layers quantized.
   Check both against fp32.
6. Time PyTorch eager, ORT fp32 and the two ORT int8 models on cases A and C and print a
   Markdown table.

The inputs are the synthetic price path of `chronos2 bench` (crates/bench/src/runner.rs,
`ShapeCase::input`): row r, step t: 100 + 3 sin(0.05 (t + 13 r)) + 0.01 t.

Set-up (a virtualenv outside the repo, layered on the reference venv /work/refvenv that holds
chronos-forecasting 2.3.2 and torch; see tools/reference/README.md for that one)
-------------------------------------------------------------------------------
    python3 -m venv /work/onnxvenv
    echo /work/refvenv/lib/python3.11/site-packages \\
        > /work/onnxvenv/lib/python3.11/site-packages/_refvenv.pth
    /work/onnxvenv/bin/pip install onnx onnxscript onnxruntime

(Tested with onnx 1.23.2, onnxscript 0.7.2, onnxruntime 1.32.0, torch 2.15, chronos-forecasting
2.3.2. Installing the three packages into /work/refvenv itself is the alternative; not tried.)

Usage
-----
    /work/onnxvenv/bin/python tools/onnx/ort_peer.py --model /work/tmp/rust-real --out /work/tmp/onnx

The .onnx files (about 480 MB fp32 and 120 MB int8) go to --out and are reused on later runs
(pass --force-export to redo them). Keep --out outside the repository.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

try:
    import numpy as np
    import torch
except ImportError as exc:  # pragma: no cover - set-up error path
    sys.exit(f"error: {exc}. Run this with the venv described at the top of {__file__}.")

CASES = {
    # name: (series, context, horizon) -- the same names and shapes as `chronos2 bench`.
    "A": (1, 512, 16),
    "C": (32, 512, 16),
}
# Engine key -> column title.
ENGINES = {
    "torch": "PyTorch eager",
    "ort-fp32": "ORT fp32",
    "ort-int8": "ORT int8",
    "ort-int8-pre": "ORT int8, pre-processed",
}
# Batch size of the example input given to the exporter. Not 1: torch.export specialises a
# dimension whose example size is 1, and the batch dimension must stay dynamic.
EXPORT_BATCH = 4


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(
            "Export the reference Chronos-2 to ONNX (dynamo exporter), quantize it with ONNX "
            "Runtime's quantize_dynamic, verify both against PyTorch, and time PyTorch eager, "
            "ORT fp32 and ORT int8 on the `chronos2 bench` cases A and C."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model", required=True, type=Path, help="checkpoint directory (config.json + model.safetensors)"
    )
    p.add_argument(
        "--out", required=True, type=Path, help="folder for the .onnx files and results.json (outside the repo)"
    )
    p.add_argument("--cases", default="A,C", help="comma-separated cases to time (A, C)")
    p.add_argument("--runs-a", type=int, default=20, help="timed runs for case A (the median is reported)")
    p.add_argument("--runs-c", type=int, default=5, help="timed runs for case C (the median is reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs per engine and case")
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
    p.add_argument("--skip-timing", action="store_true", help="export, quantize and verify only")
    args = p.parse_args()
    args.cases = [c.strip().upper() for c in args.cases.split(",") if c.strip()]
    for c in args.cases:
        if c not in CASES:
            p.error(f"unknown case {c!r}; this script knows {', '.join(CASES)}")
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in args.engines:
        if e not in ENGINES:
            p.error(f"unknown engine {e!r}; choose from {', '.join(ENGINES)}")
    if not (args.model / "config.json").is_file():
        p.error(f"{args.model} has no config.json; --model must be a Chronos-2 checkpoint directory")
    if min(args.runs_a, args.runs_c) < 1 or args.warmup < 0 or args.threads < 1:
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


def patch_einsum() -> None:
    """Install the einsum-free group mask in the reference module (for this process only)."""
    from chronos.chronos2.model import Chronos2Encoder

    Chronos2Encoder._construct_and_invert_group_time_mask = staticmethod(_group_time_mask_without_einsum)


def check_patch(model) -> None:
    """Torch outputs before and after the patch, on random input with groups and NaNs."""
    gen = torch.Generator().manual_seed(19)
    context = torch.randn(6, 512, generator=gen) * 5.0 + 20.0
    context[1, :100] = float("nan")  # left padding, as the pipeline pads short series
    context[4, 300:310] = float("nan")  # a gap inside the context
    group_ids = torch.tensor([0, 0, 1, 2, 2, 2])
    fwd = Forward(model, 1)
    with torch.inference_mode():
        before = fwd(context, group_ids)
        patch_einsum()
        after = fwd(context, group_ids)
    diff = (before - after).abs().max().item()
    print(f"einsum patch: torch before vs after on random input (6 series, 3 groups, NaNs): max |diff| = {diff:.3g}")
    if not diff <= 1e-6:
        sys.exit("error: the einsum-free group mask changes the outputs; not exporting")


# --------------------------------------------------------------------------------------------
# Inputs, export, quantization
# --------------------------------------------------------------------------------------------


def bench_input(series: int, context: int) -> tuple[np.ndarray, np.ndarray]:
    """`ShapeCase::input` of crates/bench/src/runner.rs without data: a synthetic price path per
    row (computed in float32 as the Rust code does), each row its own group."""
    t = np.arange(context, dtype=np.float32)
    rows = []
    for r in range(series):
        phase = (np.arange(context) + 13 * r).astype(np.float32) * np.float32(0.05)
        rows.append(np.float32(100.0) + np.sin(phase) * np.float32(3.0) + t * np.float32(0.01))
    return np.stack(rows).astype(np.float32), np.arange(series, dtype=np.int64)


def export_onnx(model, path: Path) -> None:
    """Dynamo export of Forward(model, 1), batch dynamic, context fixed at 512."""
    fwd = Forward(model, 1).eval()
    context, group_ids = bench_input(EXPORT_BATCH, 512)
    context[1, :64] = np.nan  # let the example exercise the missing-value path too
    batch = torch.export.Dim("batch", min=1, max=4096)
    t0 = time.perf_counter()
    with torch.no_grad():  # not inference_mode: torch.export rejects inference tensors
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
    print(f"exported {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s")


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
        "(48 are the attention products, activation x activation)"
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
        f"  ORT {label:<16} max |diff| {result['max_abs']:.3g}; |diff| / series scale: "
        f"max {result['max_rel_scale']:.3g}, mean {result['mean_rel_scale']:.3g}; "
        f"relative L2 error of (forecast - level): {result['rel_l2']:.3g}"
    )
    return result


def verify(model, sessions: dict, check_inputs: dict) -> dict:
    """ORT fp32 against torch (exits if they disagree) and each ORT int8 model against ORT fp32,
    on each input set."""
    fwd = Forward(model, 1)
    results = {}
    for name, (context, group_ids) in check_inputs.items():
        print(f"verify on {name} {tuple(context.shape)}:")
        with torch.inference_mode():
            ref = fwd(torch.from_numpy(context), torch.from_numpy(group_ids)).numpy()
        out = {k: ort_run(s, context, group_ids) for k, s in sessions.items()}
        entry = {"fp32_vs_torch": compare("fp32 vs torch", ref, out["fp32"], context)}
        if not entry["fp32_vs_torch"]["max_rel_scale"] < 1e-4:
            sys.exit("error: the ONNX fp32 model disagrees with PyTorch (|diff| / scale >= 1e-4)")
        for key in sessions:
            if key == "fp32":
                continue
            got = compare(f"{key} vs fp32", out["fp32"], out[key], context)
            # Sanity, not accuracy: int8 must stay a small perturbation of the fp32 forecast.
            if not (got["max_rel_scale"] < 0.05 and got["rel_l2"] < 0.1):
                print(f"  WARNING: ORT {key} is far from fp32 (limits: 0.05 of the scale, 0.1 relative L2)")
            entry[f"{key}_vs_fp32"] = got
        results[name] = entry
    return results


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def median_ms(call, warmup: int, runs: int) -> tuple[float, float, float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times), max(times)


def fmt_ms(ms: float) -> str:
    return f"{ms / 1e3:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def main() -> None:
    args = parse_args()
    repo = Path(__file__).resolve().parents[2]
    if args.out.resolve().is_relative_to(repo):
        sys.exit(f"error: --out {args.out} is inside the repository; the .onnx files are ~730 MB")
    args.out.mkdir(parents=True, exist_ok=True)

    # Before torch starts its thread pools (set_num_interop_threads fails after that).
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    try:
        import onnxruntime as ort
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        sys.exit(f"error: {exc}; install onnx, onnxscript, onnxruntime (see the top of {__file__})")

    vnni = has_vnni()
    if vnni is False and not args.reduce_range:
        print("note: this CPU has no VNNI; ORT advises --reduce-range for U8S8 here (saturation)")

    model = load_model(args.model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.model} ({n_params:,} parameters)")
    check_patch(model)  # also installs the patch

    fp32_path = args.out / "chronos2_fp32.onnx"
    suffix = "_rr" if args.reduce_range else ""
    int8_paths = {
        "int8": args.out / f"chronos2_int8{suffix}.onnx",
        "int8-pre": args.out / f"chronos2_int8_pre{suffix}.onnx",
    }
    if args.force_export or not fp32_path.exists():
        export_onnx(model, fp32_path)
    else:
        print(f"reusing {fp32_path} (--force-export to redo)")
    for key, path in int8_paths.items():
        if args.force_export or not path.exists():
            quantize(fp32_path, path, args.reduce_range, preprocess=key == "int8-pre")
        else:
            print(f"reusing {path} (--force-export to redo)")

    sessions = {"fp32": ort_session(fp32_path, args.threads)}
    sessions.update({key: ort_session(path, args.threads) for key, path in int8_paths.items()})

    gen = np.random.default_rng(19)
    # Level 0: the forecasts of a random checkpoint stay within ~0.003 of the scale from the level,
    # so at level 100 float32 rounding of the output alone is ~1 % of (forecast - level).
    rand_ctx = gen.standard_normal((6, 512)).astype(np.float32)
    rand_ctx[1, :100] = np.nan
    rand_ctx[4, 300:310] = np.nan
    check_inputs = {
        "random N(0,1) input, 3 groups, NaNs": (rand_ctx, np.array([0, 0, 1, 2, 2, 2], dtype=np.int64)),
        **{f"case {c}": bench_input(*CASES[c][:2]) for c in args.cases},
    }
    accuracy = verify(model, sessions, check_inputs)

    if args.skip_timing:
        return

    engines = {key: (title, sessions.get(key.removeprefix("ort-"))) for key, title in ENGINES.items()}
    fwd = Forward(model, 1)
    timings: dict[str, dict[str, list[float]]] = {}
    for case in args.cases:
        series, ctx_len, horizon = CASES[case]
        runs = args.runs_a if case == "A" else args.runs_c
        context, group_ids = bench_input(series, ctx_len)
        t_ctx, t_gid = torch.from_numpy(context), torch.from_numpy(group_ids)
        timings[case] = {}
        for key in args.engines:
            label, session = engines[key]
            if session is None:

                def call():
                    with torch.inference_mode():
                        fwd(t_ctx, t_gid)

            else:

                def call(session=session):
                    ort_run(session, context, group_ids)

            med, lo, hi = median_ms(call, args.warmup, runs)
            timings[case][key] = [med, lo, hi]
            print(
                f"case {case} {label}: median {fmt_ms(med)} (min {fmt_ms(lo)}, max {fmt_ms(hi)}, "
                f"{runs} runs after {args.warmup} warm-up)"
            )

    # The table.
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    print()
    print(
        f"Reference Chronos-2 ({n_params:,} parameters, {args.model}), CPU, {args.threads} intra-op threads, "
        f"1 inter-op; median (min) of N runs after {args.warmup} warm-up; {cpu_model()}, "
        f"VNNI: {vnni}; torch {torch.__version__}, onnxruntime {ort.__version__}"
    )
    print()
    header = ["case", "shape", "N"] + [engines[k][0] for k in args.engines]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for case in args.cases:
        series, ctx_len, horizon = CASES[case]
        runs = args.runs_a if case == "A" else args.runs_c
        row = [case, f"{series} series x {ctx_len}, h {horizon}", str(runs)]
        row += [f"{fmt_ms(timings[case][k][0])} ({fmt_ms(timings[case][k][1])})" for k in args.engines]
        print("| " + " | ".join(row) + " |")
    print()
    print(f"Command: `{cmd}`")
    cases = ",".join(args.cases)
    print(f"Rust side, same shapes: `chronos2 bench --model {args.model} --modes compiled --cases {cases}`")

    results = {
        "command": cmd,
        "model": str(args.model),
        "parameters": n_params,
        "threads": args.threads,
        "warmup": args.warmup,
        "cpu": cpu_model(),
        "vnni": vnni,
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__, "python": platform.python_version()},
        "quantization": {
            "call": "quantize_dynamic",
            "weight_type": "QInt8 (symmetric)",
            "activation_type": "QUInt8 (dynamic, asymmetric, per tensor)",
            "per_channel": True,
            "reduce_range": args.reduce_range,
            "int8-pre": "onnxruntime.quantization.shape_inference.quant_pre_process first",
        },
        "accuracy": accuracy,
        "timings_ms_median_min_max": timings,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results written to {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
