"""Shared helpers for the Chronos-2 reference fixture scripts (run with the reference venv).

Everything here uses the reference package `chronos-forecasting==2.3.2` (module
`chronos.chronos2`) and only builds randomly initialised models: no pretrained weights.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load_file

from chronos.chronos2 import Chronos2CoreConfig, Chronos2Model

# The 21 quantile levels of amazon/chronos-2: 0.01, 0.05, 0.10, ..., 0.95, 0.99.
QUANTILES = [0.01] + [round(0.05 * i, 2) for i in range(1, 20)] + [0.99]
assert len(QUANTILES) == 21


def build_model(
    *,
    d_model: int,
    d_kv: int,
    d_ff: int,
    num_layers: int,
    num_heads: int,
    chronos_config: dict,
    seed: int,
) -> Chronos2Model:
    """Builds a default-initialised Chronos2Model (sdpa attention) in eval mode."""
    torch.manual_seed(seed)
    cfg = Chronos2CoreConfig(
        d_model=d_model,
        d_kv=d_kv,
        d_ff=d_ff,
        num_layers=num_layers,
        num_heads=num_heads,
        feed_forward_proj="relu",
        chronos_config=dict(chronos_config),
    )
    model = Chronos2Model(cfg)
    model.eval()
    assert model.config._attn_implementation == "sdpa", model.config._attn_implementation
    return model


@torch.no_grad()
def rerandomize(model: torch.nn.Module, seed: int) -> None:
    """Re-draws every weight with O(1) gains (spec section 7).

    RMS-norm weights 1 + 0.1 N(0,1); matrices N(0, 1/fan_in) with fan_in = shape[1];
    biases 0.1 N(0,1); the special-token embedding `shared.weight` N(0,1).
    Parameters are visited in `named_parameters()` order with one seeded generator.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        if name.endswith("layer_norm.weight"):
            value = 1.0 + 0.1 * noise
        elif name == "shared.weight":
            value = noise
        elif name.endswith(".bias"):
            value = 0.1 * noise
        elif p.ndim == 2:
            value = noise / float(np.sqrt(p.shape[1]))
        else:
            raise ValueError(f"unexpected parameter {name} {tuple(p.shape)}")
        p.data.copy_(value)


@torch.no_grad()
def round_weights(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Rounds every parameter to `dtype` in place, keeping the model in float32."""
    for p in model.parameters():
        p.data = p.data.to(dtype).float()


_ST_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
}


def save_file(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str]) -> None:
    """Writes a safetensors file byte-for-byte reproducibly.

    `safetensors.torch.save_file` stores the metadata map in hash order, so two runs give
    different headers. This writer emits the header JSON with `__metadata__` first and the
    tensors in name order (data laid out in the same order, little-endian, header padded
    with spaces to a multiple of 8), then checks the result with the safetensors loader.
    """
    header: dict = {"__metadata__": {k: str(v) for k, v in sorted(metadata.items())}}
    chunks, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        # Raw little-endian bytes via a uint8 view (works for bf16, which numpy lacks).
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": _ST_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    if os.path.exists(path):
        os.remove(path)  # save_pretrained creates its file 0600; start from the default umask
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for c in chunks:
            f.write(c)
    back = load_file(path)
    assert back.keys() == tensors.keys(), path
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name].view(torch.uint8), t.contiguous().view(torch.uint8)), name


def save_state_dict_as(model: torch.nn.Module, path: str, dtype: torch.dtype) -> None:
    """Overwrites `path` with the model's state dict stored as `dtype` tensors."""
    sd = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(sd, path, metadata={"format": "pt"})


def edit_config(path: str, fn) -> None:
    with open(path) as f:
        cfg = json.load(f)
    cfg = fn(cfg)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


@dataclass
class Case:
    name: str
    description: str
    context: np.ndarray  # (B, T) float32, NaN = missing
    group_ids: np.ndarray  # (B,) int64
    num_output_patches: int
    future_covariates: np.ndarray | None = None  # (B, F) float32, NaN = unknown
    with_encoder_output: bool = False
    results: dict = field(default_factory=dict)


@torch.no_grad()
def run_case(model: Chronos2Model, case: Case) -> dict[str, torch.Tensor]:
    """Runs the reference forward and encode on one case; returns the fixture tensors."""
    context = torch.from_numpy(np.ascontiguousarray(case.context, dtype=np.float32))
    group_ids = torch.from_numpy(np.ascontiguousarray(case.group_ids, dtype=np.int64))
    kwargs = dict(context=context, group_ids=group_ids, num_output_patches=case.num_output_patches)
    fc = None
    if case.future_covariates is not None:
        fc = torch.from_numpy(np.ascontiguousarray(case.future_covariates, dtype=np.float32))
        kwargs["future_covariates"] = fc

    t0 = time.perf_counter()
    preds = model(**kwargs).quantile_preds
    elapsed = time.perf_counter() - t0
    enc_out, loc_scale, _, num_context_patches = model.encode(**kwargs)
    hidden = enc_out.last_hidden_state
    loc, scale = loc_scale

    b = context.shape[0]
    m = case.num_output_patches
    assert preds.shape == (b, len(model.chronos_config.quantiles), m * model.chronos_config.output_patch_size)
    assert hidden.shape == (b, num_context_patches + 1 + m, model.config.d_model)
    assert torch.isfinite(preds).all(), f"{case.name}: non-finite quantile_preds"

    # Consistency: the recorded encoder output, pushed through the head and the inverse
    # instance norm, must give the recorded forecast (forward and encode agree).
    q, p = preds.shape[1], model.chronos_config.output_patch_size
    head = model.output_patch_embedding(hidden[:, -m:])  # (B, M, Q*P), quantile-major per patch
    head = head.reshape(b, m, q, p).permute(0, 2, 1, 3).reshape(b, q, m * p)
    again = torch.sinh(head) * scale[:, :, None] + loc[:, :, None]
    assert torch.allclose(again, preds, rtol=1e-6, atol=1e-6 * float(preds.abs().max().clamp(min=1))), case.name

    out = {
        "context": context,
        "group_ids": group_ids,
        "quantile_preds": preds.float(),
        "loc": loc.reshape(b).float(),
        "scale": scale.reshape(b).float(),
    }
    if fc is not None:
        out["future_covariates"] = fc
    if case.with_encoder_output:
        out["encoder_output"] = hidden.float()
    case.results = {"seconds": elapsed, "max_abs": float(preds.abs().max())}
    return {k: v.contiguous() for k, v in out.items()}


def write_case(path: str, tensors: dict[str, torch.Tensor], model_name: str, case: Case) -> None:
    metadata = {
        "model": model_name,
        "num_output_patches": str(case.num_output_patches),
        "description": " ".join(case.description.split()),
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file(tensors, path, metadata=metadata)
