#!/usr/bin/env bash
# The one GPU check, for a machine with an NVIDIA GPU (sized for ~10 minutes on an
# H200). Run from anywhere; results go to $OUT (the device tool's folder) or target/gpu-check.
#
#   1. finds the CUDA libraries (driver, cuBLAS 12, NVRTC 12) and names the GPU;
#   2. takes the binaries from target/gpu-bundle (tools/gpu/bundle.sh, built where crates.io
#      is reachable), else builds them here with `cargo build --offline --features cuda`;
#   3. runs the GPU tests (parity with CPU eager on the fixtures and a real-size random
#      checkpoint, bf16 by the 2 % MAE rule, zero allocations on graph replay, fallback);
#   4. `chronos2 bench --device cuda` on a real-size random checkpoint, cases A, C, E, F:
#      eager and compiled (CUDA graphs) in float32, compiled in bfloat16;
#   5. PyTorch eager and torch.compile(mode="reduce-overhead") on the same GPU and checkpoint,
#      only if torch and chronos-forecasting are installed there (the GPU machine may reach no
#      package registry; this part is then skipped with one line);
#   6. prints one table.
#
# GPU_CHECK_PRESET=tiny GPU_CHECK_RUNS=2 makes a dry run of the script on a CPU machine in
# seconds (the model falls back to the CPU; the table says so).
set -uo pipefail
preset=${GPU_CHECK_PRESET:-chronos-2}
runs=${GPU_CHECK_RUNS:-20}
# Whole-script budget (the device tool allows 600 s a command): each step gets what is left,
# capped, and the optional PyTorch part is skipped when under a minute remains.
budget=${GPU_CHECK_BUDGET_S:-570}
left() { local rest=$((budget - SECONDS)); [ "$rest" -lt "$1" ] && echo "$rest" || echo "$1"; }
cd "$(dirname "$0")/../.."
root=$PWD
out=${OUT:-$root/target/gpu-check}
mkdir -p "$out"
status=0
step() { echo; echo "== $*"; }

step "CUDA libraries"
lib_dirs=$( {
    ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1|libcublas\.so\.12|libnvrtc\.so\.12/ {print $NF}' | xargs -r -n1 dirname
    ls -d /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib /usr/lib/x86_64-linux-gnu 2>/dev/null
    python3 -c 'import glob, site, sys; [print(d) for p in site.getsitepackages() + [site.getusersitepackages()] for d in glob.glob(p + "/nvidia/*/lib")]' 2>/dev/null
} | sort -u )
for lib in libcuda.so.1 libcublas.so.12 libcublasLt.so.12 libnvrtc.so.12; do
    found=""
    for dir in $lib_dirs; do
        if [ -e "$dir/$lib" ]; then found=$dir; break; fi
    done
    if [ -n "$found" ]; then
        echo "$lib: $found"
        case ":${LD_LIBRARY_PATH:-}:" in *":$found:"*) ;; *) export LD_LIBRARY_PATH="$found${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
    else
        echo "$lib: NOT FOUND (the GPU tests will skip and the bench will fall back to the CPU)"
        status=1
    fi
done
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
else
    echo "no GPU (nvidia-smi not found)" | tee "$out/gpu.txt"
    status=1
fi

step "binaries"
if [ -x target/gpu-bundle/chronos2 ]; then
    bin=target/gpu-bundle
    built=$(cat "$bin/built-in")
    if [ "$built" != "$root" ] && [ ! -e "$built" ]; then
        # The tests find the fixtures under the path they were built in.
        mkdir -p "$(dirname "$built")" && ln -s "$root" "$built" || echo "cannot link $built -> $root; fixture tests will fail"
    fi
    echo "using the carried bundle (built in $built)"
else
    echo "no target/gpu-bundle: building here (needs the crates in the local cargo registry)"
    export CARGO_TARGET_DIR=target/gpu
    cargo build --release --offline -p chronos2-cli --features cuda || exit 1
    mkdir -p target/gpu-local/tests
    cp target/gpu/release/chronos2 target/gpu-local/
    cargo test --release --offline --manifest-path crates/cuda/Cargo.toml --no-run --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"])' | while read -r name path; do cp "$path" "target/gpu-local/tests/$name"; done
    bin=target/gpu-local
fi

step "GPU tests"
for test in "$bin"/tests/*; do
    name=$(basename "$test")
    if timeout "$(left 200)" "$test" --test-threads 1 --nocapture > "$out/test-$name.txt" 2>&1; then
        echo "$name: $(grep -o 'test result: .*passed; [0-9]* failed' "$out/test-$name.txt")"
    else
        echo "$name: FAILED (see test-$name.txt)"; tail -n 30 "$out/test-$name.txt"; status=1
    fi
    if grep -q 'skipped: ' "$out/test-$name.txt"; then
        # On a GPU machine nothing may skip: a skip means the GPU was not usable.
        echo "  skipped tests: $(grep -o 'skipped: .*' "$out/test-$name.txt" | sort | uniq -c | head -n 3)"
        status=1
    fi
    grep -E 'vs eager|real-size|MAE|GPU:' "$out/test-$name.txt" | sort -u | tail -n 8
done

step "chronos2 bench --device cuda"
model=$(mktemp -d)/chronos-2-random
"$bin/chronos2" init-random --preset "$preset" --seed 0 --out "$model" > /dev/null || status=1
bench() {
    local label=$1; shift
    timeout "$(left 150)" "$bin/chronos2" bench --model "$model" --device cuda --cases A,C,E,F --runs "$runs" --warmup-calls 2 \
        --process-runs 1 --gemm-size 512 --out "$out/bench-$label.json" "$@" > "$out/bench-$label.txt" 2>&1 \
        || { echo "bench $label FAILED"; status=1; }
    cat "$out/bench-$label.txt"
}
bench float32 --modes both
bench bfloat16 --modes compiled --dtype bfloat16

step "PyTorch on the same GPU and checkpoint"
if [ "$(left 240)" -ge 60 ]; then
    timeout "$(left 240)" python3 tools/gpu/torch_bench.py "$model" --runs "$runs" > "$out/torch.jsonl" 2> "$out/torch.txt"
    tail -n 3 "$out/torch.txt"
else
    echo "skipped: under a minute of the ${budget} s budget left"
fi

step "table"
python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
gpu = (out / "gpu.txt").read_text().strip().split(",")[0] if (out / "gpu.txt").exists() else "?"
rows = []
for label in ("float32", "bfloat16"):
    path = out / f"bench-{label}.json"
    if not path.exists():
        continue
    report = json.loads(path.read_text())
    for mode in report["modes"]:
        engine = "chronos2 " + ("compiled (CUDA graphs)" if mode["mode"] == "compiled" else "eager") + ("" if mode.get("gpu") else " [FELL BACK TO CPU]")
        for case in mode["cases"]:
            r = case["result"]
            rows.append((engine, label, case["case"]["name"], r["warmup_ms"][0] if r["warmup_ms"] else float("nan"), r["steady_ms"]["median"], case["series_per_s"], r["fallbacks"]))
torch_path = out / "torch.jsonl"
if torch_path.exists():
    for line in torch_path.read_text().splitlines():
        t = json.loads(line)
        rows.append((t["engine"], t["dtype"], t["case"], t["first_ms"], t["median_ms"], t["series_per_s"], 0))
print(f"GPU: {gpu}")
print("| engine | dtype | case | first call (ms) | median (ms) | series/s | fallbacks |")
print("|---|---|---|---|---|---|---|")
for engine, dtype, case, first, median, rate, fallbacks in rows:
    print(f"| {engine} | {dtype} | {case} | {first:.1f} | {median:.2f} | {rate:.0f} | {fallbacks} |")
best = max((r for r in rows if r[2] == "E" and r[0].startswith("chronos2") and "FELL BACK" not in r[0]), key=lambda r: r[5], default=None)
if best:
    print(f"\nbatch 256 (case E, {best[0]}, {best[1]}): {best[5]:.0f} series/s = {best[5] / 300:.1f}x the 300 series/s A10G anchor (goal: 10x)")
else:
    print("\nno GPU figure for batch 256: the model did not run on a GPU")
PY
echo
echo "results in $out; exit status $status"
exit $status
