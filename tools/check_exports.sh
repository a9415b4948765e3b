#!/usr/bin/env bash
# End-to-end check of `make-random` + `export` (with its built-in verification) for every supported family
# and export variant, on tiny random-init models in a temp dir. Exits non-zero on any failure.
#   tools/check_exports.sh            (PYTHON=... to override the interpreter, KEEP=1 to keep the temp dir)
set -u
cd "$(dirname "$0")"
PY=${PYTHON:-../.venv/bin/python}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/specula-check-exports.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $TMP"; else trap 'rm -rf "$TMP"' EXIT; fi
export OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore

fail=0
summary=()
start=$(date +%s)

# run NAME ARGS...: run one specula_tools command, record OK/FAIL and the verification diffs
run() {
  local name=$1; shift
  local log="$TMP/$name.log" t0=$(date +%s) status
  if "$PY" -m specula_tools "$@" >"$log" 2>&1; then status=OK; else status=FAIL; fail=1; fi
  local diffs
  diffs=$(awk '/max\|diff\|/ {printf "%s=%s ", $1, $3} /prompts x/ {printf "greedy=%s ", $2}' "$log")
  summary+=("$(printf '%-4s %-28s %3ss  %s' "$status" "$name" "$(( $(date +%s) - t0 ))" "$diffs")")
  if [ "$status" = FAIL ]; then echo "---- $name failed; last lines of $log:"; tail -n 25 "$log"; fi
}

for fam in llama qwen2 gpt2; do
  run "make-random-$fam" make-random --family "$fam" "$TMP/hf-$fam"
  run "$fam" export "$TMP/hf-$fam" "$TMP/onnx-$fam"
  run "$fam--with-hidden" export "$TMP/hf-$fam" "$TMP/onnx-$fam-hidden" --with-hidden
  run "$fam--with-packed" export "$TMP/hf-$fam" "$TMP/onnx-$fam-both" --with-packed
  run "$fam--packed" export "$TMP/hf-$fam" "$TMP/onnx-$fam-packed" --packed
done
run "llama--fp16" export "$TMP/hf-llama" "$TMP/onnx-llama-fp16" --fp16
run "llama--fp16--packed--hidden" export "$TMP/hf-llama" "$TMP/onnx-llama-fp16-ph" --fp16 --packed --with-hidden
run "qwen2--fp16" export "$TMP/hf-qwen2" "$TMP/onnx-qwen2-fp16" --fp16
# issue 11 families (mistral, phi3: 16-token sliding window, so the `window` checks run)
for fam in qwen3 llama3 mistral phi3; do
  run "make-random-$fam" make-random --family "$fam" "$TMP/hf-$fam"
  run "$fam" export "$TMP/hf-$fam" "$TMP/onnx-$fam"
done
run "mistral--packed--hidden" export "$TMP/hf-mistral" "$TMP/onnx-mistral-ph" --packed --with-hidden
# the fused graphs of qwen3 (q/k norms), mistral (a window on every layer) and without a window, and the gemmas
# (window on alternate layers), both graphs each, as the engine loads them
run "qwen3--with-packed" export "$TMP/hf-qwen3" "$TMP/onnx-qwen3-both" --with-packed --graph fused
run "mistral--with-packed" export "$TMP/hf-mistral" "$TMP/onnx-mistral-both" --with-packed --graph fused
run "make-random-mistral-nowindow" make-random --family mistral "$TMP/hf-mistral-nw" --sliding-window 0
run "mistral-nowindow--with-packed" export "$TMP/hf-mistral-nw" "$TMP/onnx-mistral-nw-both" --with-packed --graph fused
for fam in gemma2 gemma3; do
  run "make-random-$fam" make-random --family "$fam" "$TMP/hf-$fam"
  run "$fam--with-packed" export "$TMP/hf-$fam" "$TMP/onnx-$fam-both" --with-packed --graph fused
done
# quantize on fused graphs (its own check: one call of several rows against calls of two); GPT-2's two tables
# (tokens, positions) are both gathered
run "gpt2--with-packed--fused" export "$TMP/hf-gpt2" "$TMP/onnx-gpt2-fused-both" --with-packed --graph fused
run "gpt2-fused--int8-b128-a8" quantize "$TMP/onnx-gpt2-fused-both" "$TMP/q-gpt2-int8" --scheme int8-b128-a8
run "gemma3-fused--int4-b32-a8" quantize "$TMP/onnx-gemma3-both" "$TMP/q-gemma3-int4" --scheme int4-b32-a8

# train-griffin for a user's target: --corpus (a directory of sources), no --draft, no --target-hf (onnx-to-hf
# into the work dir); a few steps, then the random-head gate on a llama (untied lm_head; --target-hf its own
# checkpoint: onnx-to-hf's 32-id greedy check can split a near-tie of a random llama)
run "train-griffin--qwen2" train-griffin --target "$TMP/onnx-qwen2-hidden" --corpus specula_tools \
  --work "$TMP/griffin-qwen2-work" --out "$TMP/griffin-qwen2" --steps 3,2 --seq-len 64 --batch 2 --draft-vocab 256 \
  --eval-prompts 2 --eval-prompt-len 32 --eval-gen 16 --timing-runs 10 --threads 1
run "train-griffin--llama--random" train-griffin --target "$TMP/onnx-llama-hidden" --target-hf "$TMP/hf-llama" --corpus specula_tools \
  --work "$TMP/griffin-llama-work" --out "$TMP/griffin-llama" --random-only --draft-vocab 256 --timing-runs 10 --threads 1
run "mistral--fp16" export "$TMP/hf-mistral" "$TMP/onnx-mistral-fp16" --fp16

echo "==== check_exports summary ($(( $(date +%s) - start ))s)"
printf '%s\n' "${summary[@]}"
if [ $fail = 0 ]; then echo "ALL OK"; else echo "FAILURES"; fi
exit $fail
