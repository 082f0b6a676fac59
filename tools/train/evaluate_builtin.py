"""Evaluate a Chronos-2 model directory with the reference pipeline (`predict_quantiles`).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 /work/refvenv/bin/python tools/train/evaluate_builtin.py \
        --model-dir assets/builtin --json /work/tmp/train/eval.json

Two benchmarks, each scored for the model, the naive forecast (last value) and the seasonal-naive
forecast (value one season ago); the two baselines put all their quantiles on the point forecast.

(a) Held-out synthetic: `--n-synthetic` univariate series from the training generators
    (`train_builtin.gen_univariate`) drawn with `--synthetic-seed` (not a training seed), each of
    length context + horizon; one window per series (context 512, horizon 16). Seasonal naive
    uses season 12 here (the synthetic series mix periods 7/12/24/30/52/365, so this is only a
    rough baseline).
(b) Real files: every CSV in `--data-dir`; the close column (`Close` or `close`, never an adjusted
    close), rows sorted ascending by their timestamp column (the first column, possibly unnamed;
    WIKI-AAPL.csv is stored newest-first), rows with a missing close dropped, no re-indexing of
    gaps (the bars are used as they are). The last `--windows` non-overlapping forecast windows:
    window k (k = 0 is the latest) forecasts rows [N-16(k+1), N-16k) from the 512 rows before it;
    fewer windows when the file is too short. Seasonal naive: season 24 for hourly files, 7 for
    daily files (the stock files only have trading days, so 7 rows is not a calendar week there).

Metrics (per method; the model's point forecast is its 0.5 quantile):
  MASE = mean |y - y_hat| over the horizon / mean |c_t - c_{t-1}| over the window's context
         (naive scale with season m = 1 for every dataset, as in fev/GluonTS with seasonality 1);
         reported as the mean over windows.
  WQL  = mean over q in {0.1, ..., 0.9} of 2 * sum pinball_q(y, y_hat_q) / sum |y|.
         "pooled": sums over all windows of the dataset (fev/GluonTS definition). For the synthetic
         set each window is first divided by the mean |value| of its context, so that no single
         series dominates through its scale (this rescaling does not change any per-window ranking).
         "mean": the mean over windows of the per-window WQL.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_builtin  # noqa: E402  (generators)

LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def pinball(y, qf, levels):
    """y: (h,), qf: (h, Q) -> (Q,) sums over the horizon of the pinball loss."""
    lv = np.asarray(levels)[None, :]
    d = y[:, None] - qf
    return np.sum(np.maximum(lv * d, (lv - 1) * d), axis=0)


def score_windows(windows, forecasts, levels, normalise=False):
    """windows: list of (context, target); forecasts: list of (h, Q) quantile arrays."""
    mase, wql_w, pin_tot, abs_tot = [], [], np.zeros(len(levels)), 0.0
    med = levels.index(0.5)
    for (ctx, y), qf in zip(windows, forecasts):
        ctx = np.asarray(ctx, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        qf = np.asarray(qf, dtype=np.float64)
        scale = np.mean(np.abs(np.diff(ctx)))
        mase.append(np.mean(np.abs(y - qf[:, med])) / max(scale, 1e-12))
        pb = pinball(y, qf, levels)
        denom = np.sum(np.abs(y))
        wql_w.append(float(np.mean(2 * pb / max(denom, 1e-12))))
        norm = max(np.mean(np.abs(ctx)), 1e-12) if normalise else 1.0
        pin_tot += pb / norm
        abs_tot += denom / norm
    return {
        "MASE": float(np.mean(mase)),
        "WQL_pooled": float(np.mean(2 * pin_tot / max(abs_tot, 1e-12))),
        "WQL_mean": float(np.mean(wql_w)),
        "MASE_median": float(np.median(mase)),
        "per_window_MASE": [float(x) for x in mase],
        "per_window_WQL": wql_w,
    }


def baseline_forecasts(windows, h, season, n_levels):
    naive, snaive = [], []
    for ctx, _ in windows:
        ctx = np.asarray(ctx, dtype=np.float64)
        naive.append(np.repeat(np.full((h, 1), ctx[-1]), n_levels, axis=1))
        m = season if len(ctx) >= season else 1
        sn = np.array([ctx[len(ctx) - m + (t % m)] for t in range(h)])
        snaive.append(np.repeat(sn[:, None], n_levels, axis=1))
    return naive, snaive


def model_forecasts(pipe, windows, h, batch_size=256):
    import torch

    inputs = [torch.tensor(np.asarray(ctx, dtype=np.float32)) for ctx, _ in windows]
    q, _ = pipe.predict_quantiles(inputs, prediction_length=h, quantile_levels=LEVELS, batch_size=batch_size)
    return [qq[0].numpy() for qq in q]  # each (h, Q)


def synthetic_windows(seed, n, context, horizon):
    rng = np.random.default_rng(seed)
    wins, kinds = [], []
    while len(wins) < n:
        y, kind = train_builtin.gen_univariate(rng, context + horizon)
        y = y.astype(np.float32).astype(np.float64)
        if np.std(y[:context]) == 0:
            continue
        wins.append((y[:context], y[context:]))
        kinds.append(kind)
    return wins, kinds


def load_close(path: Path):
    import pandas as pd

    df = pd.read_csv(path)
    ts_col = df.columns[0]
    close_cols = [c for c in df.columns if str(c).strip().lower() == "close"]
    if not close_cols:
        raise ValueError(f"{path.name}: no Close/close column in {list(df.columns)}")
    ts = pd.to_datetime(df[ts_col], utc=True)
    out = pd.DataFrame({"ts": ts, "close": pd.to_numeric(df[close_cols[0]], errors="coerce")})
    out = out.dropna().sort_values("ts", kind="stable").reset_index(drop=True)
    step = out["ts"].diff().median()
    hourly = step < pd.Timedelta(days=1)
    return out["close"].to_numpy(dtype=np.float64), bool(hourly), str(close_cols[0]), str(ts_col)


def real_windows(y, n_windows, context, horizon):
    wins = []
    N = len(y)
    for k in range(n_windows):
        end = N - horizon * k
        start = end - horizon
        if start - context < 0:
            break
        wins.append((y[start - context : start], y[start:end]))
    return wins[::-1]  # chronological


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "data"))
    ap.add_argument("--json", default="/work/tmp/train/eval.json")
    ap.add_argument("--synthetic-seed", type=int, default=777)
    ap.add_argument("--n-synthetic", type=int, default=300)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--horizon", type=int, default=16)
    ap.add_argument("--windows", type=int, default=20)
    ap.add_argument("--synthetic-season", type=int, default=12)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from chronos.chronos2 import Chronos2Pipeline

    t0 = time.time()
    pipe = Chronos2Pipeline.from_pretrained(args.model_dir)
    pipe.model.eval()
    h = args.horizon
    results = {
        "model_dir": str(args.model_dir),
        "context": args.context,
        "horizon": h,
        "quantile_levels": LEVELS,
        "datasets": {},
    }

    def run(name, wins, season, normalise, extra):
        fc = model_forecasts(pipe, wins, h)
        nv, sn = baseline_forecasts(wins, h, season, len(LEVELS))
        res = {
            "n_windows": len(wins),
            "seasonal_naive_season": season,
            **extra,
            "model": score_windows(wins, fc, LEVELS, normalise),
            "naive": score_windows(wins, nv, LEVELS, normalise),
            "seasonal_naive": score_windows(wins, sn, LEVELS, normalise),
        }
        m, n = np.array(res["model"]["per_window_MASE"]), np.array(res["naive"]["per_window_MASE"])
        res["model_vs_naive"] = {
            "MASE_ratio": res["model"]["MASE"] / res["naive"]["MASE"],
            "MASE_gmean_ratio": float(np.exp(np.mean(np.log(np.maximum(m, 1e-12) / np.maximum(n, 1e-12))))),
            "MASE_win_rate": float(np.mean(m < n)),
            "WQL_pooled_ratio": res["model"]["WQL_pooled"] / res["naive"]["WQL_pooled"],
        }
        results["datasets"][name] = res

    wins, kinds = synthetic_windows(args.synthetic_seed, args.n_synthetic, args.context, h)
    run(
        "synthetic-heldout",
        wins,
        args.synthetic_season,
        True,
        {"synthetic_seed": args.synthetic_seed, "kinds": {k: kinds.count(k) for k in sorted(set(kinds))}},
    )
    # per-kind MASE on the synthetic set (model vs naive)
    syn = results["datasets"]["synthetic-heldout"]
    per_kind = {}
    for k in sorted(set(kinds)):
        idx = [i for i, kk in enumerate(kinds) if kk == k]
        per_kind[k] = {
            "n": len(idx),
            "model_MASE": float(np.mean([syn["model"]["per_window_MASE"][i] for i in idx])),
            "naive_MASE": float(np.mean([syn["naive"]["per_window_MASE"][i] for i in idx])),
            "seasonal_naive_MASE": float(np.mean([syn["seasonal_naive"]["per_window_MASE"][i] for i in idx])),
        }
    syn["per_kind"] = per_kind

    for path in sorted(Path(args.data_dir).glob("*.csv")):
        y, hourly, ccol, tcol = load_close(path)
        wins = real_windows(y, args.windows, args.context, h)
        if not wins:
            print(f"skip {path.name}: too short ({len(y)} rows)")
            continue
        run(
            path.stem,
            wins,
            24 if hourly else 7,
            False,
            {"rows": len(y), "close_column": ccol, "timestamp_column": tcol or "(unnamed)", "hourly": hourly},
        )

    results["eval_wall_s"] = round(time.time() - t0, 1)

    # Markdown table
    lines = [
        f"Context {args.context}, horizon {h}. MASE: mean over windows (scale: in-sample naive MAE, m = 1). "
        "WQL over quantiles 0.1..0.9: pooled over windows (fev definition; synthetic windows rescaled by "
        "mean |context|) and mean of per-window WQL.",
        "",
        "| dataset | windows | s-naive season | MASE model | MASE naive | MASE s-naive | WQL model | WQL naive | WQL s-naive "
        "| WQL(mean) model | WQL(mean) naive | WQL(mean) s-naive | model/naive MASE | model wins (MASE) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["datasets"].items():
        lines.append(
            f"| {name} | {r['n_windows']} | {r['seasonal_naive_season']} "
            f"| {r['model']['MASE']:.3f} | {r['naive']['MASE']:.3f} | {r['seasonal_naive']['MASE']:.3f} "
            f"| {r['model']['WQL_pooled']:.4f} | {r['naive']['WQL_pooled']:.4f} | {r['seasonal_naive']['WQL_pooled']:.4f} "
            f"| {r['model']['WQL_mean']:.4f} | {r['naive']['WQL_mean']:.4f} | {r['seasonal_naive']['WQL_mean']:.4f} "
            f"| {r['model_vs_naive']['MASE_ratio']:.3f} | {100 * r['model_vs_naive']['MASE_win_rate']:.0f}% |"
        )
    lines.append("")
    lines.append("Held-out synthetic, MASE by generator kind (model / naive / seasonal naive):")
    lines.append("")
    lines.append("| kind | n | model | naive | s-naive |")
    lines.append("|---|---:|---:|---:|---:|")
    for k, v in per_kind.items():
        lines.append(
            f"| {k} | {v['n']} | {v['model_MASE']:.3f} | {v['naive_MASE']:.3f} | {v['seasonal_naive_MASE']:.3f} |"
        )
    md = "\n".join(lines)
    results["markdown"] = md
    print(md)
    print(f"\neval wall time {results['eval_wall_s']} s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
