#!/usr/bin/env bash
# Accuracy of a lower precision against float32, the seed's way: `chronos2 compare --dtypes
# float32,DTYPE` (compiled mode, built-in model unless --model is given) on every file of
# data/, then one Markdown table: MAE of each, MAE difference (rule < 2 %), largest
# forecast difference relative to the largest forecast, and the threshold strategy's return.
#   bench/dtype-accuracy.sh int8            # or bfloat16
#   bench/dtype-accuracy.sh int8 --model DIR
set -euo pipefail
cd "$(dirname "$0")/.."
dtype=${1:?usage: bench/dtype-accuracy.sh DTYPE [compare flags...]}
shift
bin=${CHRONOS2_BIN:-target/release/chronos2}
out=${OUT:-target/dtype-accuracy/$dtype}
mkdir -p "$out"
for file in data/*.csv; do
  name=$(basename "$file" .csv)
  rm -rf "$out/$name"
  "$bin" compare --data "$file" --dtypes "float32,$dtype" --process-runs 0 --repeats 1 \
    --out "$out/$name" "$@" >/dev/null 2>"$out/$name.log" || { echo "$name: compare failed (see $out/$name.log)"; exit 1; }
done
python3 - "$out" "$dtype" <<'PY'
import json, pathlib, sys
out, dtype = pathlib.Path(sys.argv[1]), sys.argv[2]
print(f"| file | setup | MAE float32 | MAE {dtype} | MAE difference | largest forecast difference (relative) | threshold return f32 / {dtype} | MAE < 2 % |")
print("|---|---|---|---|---|---|---|---|")
for report in sorted(out.glob("*/compare.json")):
    data = json.loads(report.read_text())
    for s in data["setups"]:
        b, c = s["eager"], s["compiled"]
        ok = abs(s["mae_difference_pct"]) < 2.0
        print(f"| {report.parent.name} | {s['setup']} | {b['mae']:.6g} | {c['mae']:.6g} | {s['mae_difference_pct']:+.3f} % "
              f"| {s['max_forecast_difference']:.4g} ({s['max_forecast_difference_relative']:.2e}) "
              f"| {100*b['total_return']:+.2f} % / {100*c['total_return']:+.2f} % | {'pass' if ok else 'FAIL'} |")
PY
