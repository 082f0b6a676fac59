#!/usr/bin/env bash
# Builds, on a machine that reaches crates.io (no GPU needed), what tools/gpu/check.sh runs on a
# GPU machine that may reach nothing: the release `chronos2` binary with `--features cuda` and
# the release test binaries of chronos2-cuda, stripped, into target/gpu-bundle (about 40 MiB;
# carry that folder to the GPU machine with the working tree). Its own target directory
# (target/gpu) keeps the feature build apart from the default one.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/gpu-bundle
export CARGO_TARGET_DIR=target/gpu
cargo build --release -p chronos2-cli --features cuda
list=$(cargo test --release --manifest-path crates/cuda/Cargo.toml --no-run --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"])')
rm -rf "$out.new"
mkdir -p "$out.new/tests"
cp target/gpu/release/chronos2 "$out.new/"
while read -r name path; do
    cp "$path" "$out.new/tests/$name"
done <<< "$list"
strip "$out.new/chronos2" "$out.new"/tests/* 2>/dev/null || true
# The tests read the committed fixtures through the repository path compiled into them.
pwd > "$out.new/built-in"
rm -rf "$out"
mv "$out.new" "$out"
du -sh "$out"
ls "$out/tests"
