#!/usr/bin/env bash
# The scale benchmark of docs/scaling.md: `specula-cli cost` on random-weight models with real configurations.
#
#   cli/bench/scale/run.sh MODELS_DIR OUT_DIR [decode|prefill|all]
#
# MODELS_DIR holds exported model directories named MODEL@FORMAT (see cli/bench/scale/README.md for the commands
# that make them), e.g. qwen2.5-0.5b@fp32, qwen2.5-0.5b@int4. For each one:
#   decode:  1 and 2 threads: load, RSS, prefill of 128 tokens, t(k) for k = 1..16 over 128 tokens, plain decoding
#   prefill: 2 threads: prefill of 2,048 tokens, and of 8,192 for the float32 models
# Every run is its own JVM (its memory is read alone) and writes OUT_DIR/MODEL@FORMAT@tT[@prefill].json.
# Then: python -m specula_tools scale-report OUT_DIR (from tools/). Run it on an otherwise idle machine.
set -euo pipefail
models=${1:?MODELS_DIR}
out=${2:?OUT_DIR}
what=${3:-all}
root=$(cd "$(dirname "$0")/../../.." && pwd)
jar="$root/cli/target/specula-cli.jar"
[ -f "$jar" ] || { echo "build the CLI first: ./mvnw -B -q -pl cli -am package -DskipTests" >&2; exit 2; }
mkdir -p "$out"
java_opts=(-Xms256m -Xmx2g -XX:MaxDirectMemorySize=16g)

run_cost() { # NAME THREADS SUFFIX ARGS...
    local name=$1 threads=$2 suffix=$3
    shift 3
    echo "== $name, $threads thread(s)$suffix: $(date -u +%H:%M:%S)" >&2
    java "${java_opts[@]}" -jar "$jar" cost --target "$models/$name" --threads "$threads" \
        --json "$out/$name@t$threads$suffix.json" "$@" > /dev/null
}

for dir in "$models"/*@*; do
    name=$(basename "$dir")
    if [ "$what" = decode ] || [ "$what" = all ]; then
        for threads in 1 2; do
            run_cost "$name" "$threads" "" --context 128 --max-k 16 --prefill 128 --repeat 3 --decode-tokens 32
        done
    fi
done
for dir in "$models"/*@*; do
    name=$(basename "$dir")
    if [ "$what" = prefill ] || [ "$what" = all ]; then
        lengths=2048
        case "$name" in *@fp32) lengths=2048,8192 ;; esac
        run_cost "$name" 2 "@prefill" --context 16 --max-k 1 --prefill "$lengths" --repeat 1 --decode-tokens 2
    fi
done
