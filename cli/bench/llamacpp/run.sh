#!/usr/bin/env bash
# Specula vs llama.cpp on the same CPU (issue 17, point 1). A benchmark, not a test: CI never runs it and the
# Maven build does not depend on it. See cli/bench/llamacpp/README.md.
#
#   cli/bench/llamacpp/run.sh [WORK_DIR]        (default $LLAMACPP_WORK or ~/.cache/specula/llamacpp)
#
# Steps (each skipped when its output exists; delete the output to redo it):
#   1. llama.cpp source at 80fb11a from the npm package node-llama-cpp@3.21.1 (llama/gitRelease.bundle)
#   2. cmake Release, -DGGML_NATIVE=ON, -j$JOBS: llama-bench llama-completion llama-speculative-simple
#      llama-lookup llama-quantize, plus specula-llama-greedy (greedy_ids.cpp) linked to that libllama
#   3. Hugging Face checkpoints: the embedded pair rebuilt from its ONNX (specula_tools onnx-to-hf, verified) and
#      a random-weight body of Qwen2.5-0.5B's shape (make-random) with its ONNX export (export); for the configs
#      qwen05b-v152k (that body with Qwen2.5's real 151,936-row vocabulary) and hf (any checkpoint: HF_MODEL) also
#      their int8-a8, int8-b128-a8, int4-b32-a8 and int4-b128-a8 quantizations (quantize; for the 0.5B-class body
#      too; int4-b32-a8 and int4-b128-a8 for the embedded target), and HF_DRAFT's float32 export
#   4. GGUF f32 / f16 / q8_0 with the tree's convert_hf_to_gguf.py (pre-tokenizer forced, convert.py), q4_0 with
#      llama-quantize
#   5. greedy ids: llama.cpp vs transformers (greedy_check.py)
#   6. timings: llama.cpp plain / draft / lookup next to Specula's CLI, interleaved (bench.py)
# Environment: PYTHON (a venv with tools/requirements.txt + sentencepiece; default /work/venv-llamacpp/bin/python
# or .venv/bin/python), JOBS (2), THREADS (1,2), REPEAT (3), LIMIT (prompts, 4), NEW_TOKENS (128; 64 for the
# 0.5B-class body), PROMPTS (cli/bench/prompts.jsonl), CONFIGS ("embedded qwen05b"; also "qwen05b-v152k" and
# "hf"), STEPS ("1 2 3 4 5 6"), PRE_EMBEDDED (gpt-2), PRE_QWEN05B (qwen2), OUT (results dir, default
# WORK_DIR/results/<UTC time>), HF_MODEL (a Hugging Face checkpoint directory of a family `export` supports, for the
# config hf), HF_NAME (its files' names in WORK_DIR/models, default hf-<directory name>), PRE_HF (the BPE
# pre-tokenizer to force for it; default none: llama.cpp's converter recognises published tokenizers), HF_DRAFT
# (optional: a smaller checkpoint with HF_MODEL's vocabulary, the draft model of both engines for the config hf;
# its files are HF_NAME-draft-*), MODES_LARGE (llama.cpp's modes for qwen05b-v152k and hf, default plain;
# plain,draft,lookup with HF_DRAFT), SPECULA_POLICIES_LARGE / SPECULA_PROPOSERS_LARGE (Specula's for them, default
# plain / none; plain,fixed:4,goodput with HF_DRAFT),
# SPECULA_WARMUP (warm-up generations in Specula's JVM before each measured one, default 1,10: a fresh and a
# warm JVM), SPECULA_POLICIES, SPECULA_PROPOSERS (e.g. model,ngram,model+ngram), LOOKUP_MAX and DRAFT_MAX (llama.cpp's draft
# lengths, e.g. 4,8) for the embedded pair.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../../.." && pwd)
HERE=$REPO/cli/bench/llamacpp
WORK=${1:-${LLAMACPP_WORK:-$HOME/.cache/specula/llamacpp}}
NPM_PKG=node-llama-cpp@3.21.1
COMMIT=80fb11ac73e66d89eae2c6a91d8a77428fa733ed
JOBS=${JOBS:-2}
THREADS=${THREADS:-1,2}
REPEAT=${REPEAT:-3}
LIMIT=${LIMIT:-4}
PROMPTS=${PROMPTS:-$REPO/cli/bench/prompts.jsonl}
CONFIGS=${CONFIGS:-embedded qwen05b}
STEPS=${STEPS:-1 2 3 4 5 6}
if [ -z "${PYTHON:-}" ]; then
    if [ -x /work/venv-llamacpp/bin/python ]; then PYTHON=/work/venv-llamacpp/bin/python
    else PYTHON=$REPO/.venv/bin/python; fi
fi
SRC=$WORK/src
# GGML_FLAGS: -DGGML_NATIVE=ON by default. A VM whose CPU reports AMX that the hypervisor does not let programs use
# kills the quantized kernels with SIGILL (seen on an Intel Xeon with amx_int8 in /proc/cpuinfo); build there with
# LLAMA_BUILD_DIR=build-noamx GGML_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
# -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON"
GGML_FLAGS=${GGML_FLAGS:--DGGML_NATIVE=ON}
BUILD=$SRC/${LLAMA_BUILD_DIR:-build}
BIN=$BUILD/bin
M=$WORK/models
OUT=${OUT:-$WORK/results/$(date -u +%Y%m%dT%H%M%SZ)}
TINY=$REPO/models-tiny/src/main/resources/dev/specula/models/tiny
JAR=$REPO/cli/target/specula-cli.jar
mkdir -p "$WORK" "$M"
step() { [[ " $STEPS " == *" $1 "* ]]; }
has_config() { [[ " $CONFIGS " == *" $1 "* ]]; }
for c in $CONFIGS; do
    case $c in embedded|qwen05b|qwen05b-v152k|hf) ;;
        *) echo "run.sh: unknown config '$c' in CONFIGS (embedded, qwen05b, qwen05b-v152k, hf)" >&2; exit 2 ;; esac
done
HF_NAME=${HF_NAME:-hf-$(basename "${HF_MODEL:-none}")}
if has_config hf && [ ! -f "${HF_MODEL:-}/config.json" ]; then
    echo "run.sh: CONFIGS names hf: set HF_MODEL to a Hugging Face checkpoint directory (config.json, weights," \
        "tokenizer); it is '${HF_MODEL:-}'" >&2
    exit 2
fi
if has_config hf && [ -n "${HF_DRAFT:-}" ]; then
    [ -f "$HF_DRAFT/config.json" ] || { echo "run.sh: HF_DRAFT must be a Hugging Face checkpoint directory" \
        "(config.json, weights, tokenizer); it is '$HF_DRAFT'" >&2; exit 2; }
    # both engines refuse a draft whose vocabulary differs from the target's; say so before hours of work
    vocab() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1] + "/config.json")).get("vocab_size", "?"))' "$1"; }
    target_vocab=$(vocab "$HF_MODEL") draft_vocab=$(vocab "$HF_DRAFT")
    [ "$target_vocab" = "$draft_vocab" ] || [ "$target_vocab" = "?" ] || { echo "run.sh: HF_DRAFT's vocab_size" \
        "($draft_vocab) differs from HF_MODEL's ($target_vocab): a draft must share the target's vocabulary" >&2
        exit 2; }
fi
# absolute, since the steps run tools from tools/ and the converter from the llama.cpp tree
if has_config hf; then HF_MODEL=$(cd "$HF_MODEL" && pwd); fi
if has_config hf && [ -n "${HF_DRAFT:-}" ]; then HF_DRAFT=$(cd "$HF_DRAFT" && pwd); fi
# Specula's runtime flags for bench.py (word-split where used)
SPIN="$([ "${SPECULA_SPINNING:-1}" = 1 ] && echo --specula-spinning || true) --specula-warmup ${SPECULA_WARMUP:-1,10}"
log() { echo "[run.sh $(date -u +%H:%M:%S)] $*" >&2; }
tools() { (cd "$REPO/tools" && "$PYTHON" -m specula_tools "$@"); }

# 1. source
if step 1; then
    if [ ! -d "$SRC/.git" ]; then
        log "fetching $NPM_PKG"
        (cd "$WORK" && npm pack "$NPM_PKG" >/dev/null && tar xzf node-llama-cpp-3.21.1.tgz package/llama/gitRelease.bundle)
        git clone -q "$WORK/package/llama/gitRelease.bundle" "$SRC"
    fi
    head=$(git -C "$SRC" rev-parse HEAD)
    [ "$head" = "$COMMIT" ] || { echo "run.sh: $SRC is at $head, expected $COMMIT" >&2; exit 1; }
    log "llama.cpp source at $head"
fi

# 2. build
if step 2; then
    if [ ! -x "$BIN/llama-lookup" ] || [ ! -x "$BIN/llama-quantize" ] || [ ! -x "$BIN/llama-speculative-simple" ] \
        || [ ! -x "$BIN/llama-completion" ] || [ ! -x "$BIN/llama-bench" ]; then
        log "building llama.cpp (-j$JOBS)"
        # shellcheck disable=SC2086
        cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release $GGML_FLAGS -DLLAMA_OPENSSL=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF >/dev/null
        cmake --build "$BUILD" -j"$JOBS" --target llama-bench llama-completion llama-speculative-simple \
            llama-lookup llama-quantize
    fi
    if [ ! -x "$BIN/specula-llama-greedy" ] || [ "$HERE/greedy_ids.cpp" -nt "$BIN/specula-llama-greedy" ]; then
        g++ -O2 -std=c++17 -I"$SRC/include" -I"$SRC/ggml/include" "$HERE/greedy_ids.cpp" -o "$BIN/specula-llama-greedy" \
            -L"$BIN" -lllama -lggml -lggml-base -Wl,-rpath,"$BIN"
    fi
    [ -f "$JAR" ] || (cd "$REPO" && ./mvnw -B -o -q -pl cli -am package -DskipTests)
fi

# Specula's files of a checkpoint: its float32 export and the int8-a8 / int8-b128-a8 / int4-b32-a8 / int4-b128-a8
# quantizations of it, each with both graphs (--with-packed, as docs/models.md exports): Specula decodes a sequence
# alone with model_packed.onnx, whose layers have no If (the attention_mask graph runs its attention in an If per
# layer, for padded batches, at about 75 us a layer on one thread)
specula_models() {  # HF_DIR NAME
    [ -f "$M/$2-onnx/model_packed.onnx" ] || { rm -rf "$M/$2-onnx"; tools export "$1" "$M/$2-onnx" --with-packed; }
    for s in int8-a8 int8-b128-a8 int4-b32-a8 int4-b128-a8; do
        [ -f "$M/$2-$s/model_packed.onnx" ] || { rm -rf "$M/$2-$s"; tools quantize "$M/$2-onnx" "$M/$2-$s" --scheme $s; }
    done
}

# 3. Hugging Face checkpoints (+ ONNX for the 0.5B-class body)
if step 3; then
    for role in target draft; do
        [ -f "$M/embedded-$role-hf/model.safetensors" ] || tools onnx-to-hf "$TINY/$role" "$M/embedded-$role-hf"
    done
    for s in int4-b32-a8 int4-b128-a8; do
        [ -f "$M/embedded-$s/model.onnx" ] || tools quantize "$TINY/target" "$M/embedded-$s" --scheme $s
    done
    if [[ " $CONFIGS " == *" qwen05b "* ]]; then
        [ -f "$M/qwen05b-shape-hf/config.json" ] || tools make-random --family qwen2 "$M/qwen05b-shape-hf" \
            --tokenizer "$M/embedded-target-hf" --vocab 4096 --layers 24 --hidden 896 --heads 14 --kv-heads 2 \
            --intermediate 4864 --seed 0
        specula_models "$M/qwen05b-shape-hf" qwen05b-shape
    fi
    if has_config qwen05b-v152k; then
        [ -f "$M/qwen05b-v152k-hf/config.json" ] || tools make-random --family qwen2 "$M/qwen05b-v152k-hf" \
            --tokenizer "$M/embedded-target-hf" --vocab 151936 --layers 24 --hidden 896 --heads 14 --kv-heads 2 \
            --intermediate 4864 --seed 0 --init-std 0.2 --max-positions 32768
        specula_models "$M/qwen05b-v152k-hf" qwen05b-v152k
    fi
    if has_config hf; then
        specula_models "$HF_MODEL" "$HF_NAME"
        if [ -n "${HF_DRAFT:-}" ]; then
            [ -f "$M/$HF_NAME-draft-onnx/model_packed.onnx" ] || { rm -rf "$M/$HF_NAME-draft-onnx"
                tools export "$HF_DRAFT" "$M/$HF_NAME-draft-onnx" --with-packed; }
        fi
    fi
fi

# 4. GGUF. The converter does not know our tokenizers' hash, so convert.py names the pre-tokenizer. Our
#    tokenizer.json files split with the GPT-2 regex (ByteLevel, use_regex=true): llama.cpp's "gpt-2", which is
#    also what Specula (tokenizer.json through DJL) does. But transformers 5 loads a model_type "qwen2" directory
#    with Qwen2Tokenizer, which replaces that split with Qwen2's regex; to match transformers there, the 0.5B-class
#    (qwen2) files get "qwen2". PRE_EMBEDDED / PRE_QWEN05B override (delete the .gguf files to redo them).
gguf() {  # HF_DIR NAME PRE (empty: the converter as it is)
    for t in f32 f16 q8_0; do
        if [ -n "$3" ]; then
            [ -f "$M/$2-$t.gguf" ] || "$PYTHON" "$HERE/convert.py" "$SRC" --pre "$3" "$1" --outtype $t \
                --outfile "$M/$2-$t.gguf" >/dev/null 2>"$M/$2-$t.log"
        else
            [ -f "$M/$2-$t.gguf" ] || (cd "$SRC" && "$PYTHON" convert_hf_to_gguf.py "$1" --outtype $t \
                --outfile "$M/$2-$t.gguf") >/dev/null 2>"$M/$2-$t.log"
        fi
    done
    [ -f "$M/$2-q4_0.gguf" ] || "$BIN/llama-quantize" "$M/$2-f32.gguf" "$M/$2-q4_0.gguf" q4_0 >"$M/$2-q4_0.log" 2>&1
}
if step 4; then
    gguf "$M/embedded-target-hf" embedded-target "${PRE_EMBEDDED:-gpt-2}"
    gguf "$M/embedded-draft-hf" embedded-draft "${PRE_EMBEDDED:-gpt-2}"
    [[ " $CONFIGS " != *" qwen05b "* ]] || gguf "$M/qwen05b-shape-hf" qwen05b "${PRE_QWEN05B:-qwen2}"
    ! has_config qwen05b-v152k || gguf "$M/qwen05b-v152k-hf" qwen05b-v152k "${PRE_QWEN05B:-qwen2}"
    ! has_config hf || gguf "$HF_MODEL" "$HF_NAME" "${PRE_HF:-}"
    ! has_config hf || [ -z "${HF_DRAFT:-}" ] || gguf "$HF_DRAFT" "$HF_NAME-draft" "${PRE_HF:-}"
    log "GGUF files in $M"
fi

mkdir -p "$OUT"
# 5. greedy ids vs transformers (f32 must match exactly; f16 / q8_0 / q4_0 reported)
if step 5; then
    [ -x "$BIN/specula-llama-greedy" ] || { echo "run.sh: $BIN/specula-llama-greedy is missing: run step 2 (STEPS" \
        "with 2) for this build directory" >&2; exit 1; }
    for c in $CONFIGS; do
        case $c in
            embedded) hf=$M/embedded-target-hf; base=embedded-target ;;
            qwen05b) hf=$M/qwen05b-shape-hf; base=qwen05b ;;
            qwen05b-v152k) hf=$M/qwen05b-v152k-hf; base=qwen05b-v152k ;;
            hf) hf=$HF_MODEL; base=$HF_NAME ;;
        esac
        "$PYTHON" "$HERE/greedy_check.py" --hf "$hf" --greedy-bin "$BIN/specula-llama-greedy" --prompts "$PROMPTS" \
            --limit "${GREEDY_LIMIT:-8}" --new-tokens 32 --kv f32 --kv f16 \
            --gguf "$M/$base-f32.gguf" --gguf "$M/$base-f16.gguf" --gguf "$M/$base-q8_0.gguf" \
            --gguf "$M/$base-q4_0.gguf" --json "$OUT/greedy-$c.json" | tee "$OUT/greedy-$c.txt" \
            || log "greedy check for $c: differences (see $OUT/greedy-$c.txt)"
    done
fi

# 6. timings
if step 6; then
    for c in $CONFIGS; do
        case $c in
            embedded)
                "$PYTHON" "$HERE/bench.py" --name "embedded pair (target 11M, draft 0.9M)" --bin "$BIN" --jar "$JAR" \
                    --prompts "$PROMPTS" --limit "$LIMIT" --new-tokens "${NEW_TOKENS:-128}" --threads "$THREADS" \
                    --repeat "$REPEAT" --specula-target fp32="$TINY/target" \
                    --specula-target int4a8="$M/embedded-int4-b32-a8" --specula-target int4b128a8="$M/embedded-int4-b128-a8" \
                    --specula-draft "$TINY/draft" \
                    --specula-policies "${SPECULA_POLICIES:-plain,fixed:4,goodput,ldlp}" $SPIN \
                    ${SPECULA_PROPOSERS:+--specula-proposers "$SPECULA_PROPOSERS"} \
                    --lookup-max "${LOOKUP_MAX:-4}" --draft-max "${DRAFT_MAX:-4}" \
                    --gguf f32="$M/embedded-target-f32.gguf" --gguf f16="$M/embedded-target-f16.gguf" \
                    --gguf q8_0="$M/embedded-target-q8_0.gguf" --gguf q4_0="$M/embedded-target-q4_0.gguf" \
                    --draft-gguf f32="$M/embedded-draft-f32.gguf" --draft-gguf f16="$M/embedded-draft-f16.gguf" \
                    --json "$OUT/bench-embedded.json" --markdown "$OUT/bench-embedded.md" ;;
            qwen05b)
                "$PYTHON" "$HERE/bench.py" --name "0.5B-class body (Qwen2.5-0.5B shape, vocab 4096, random weights)" \
                    --bin "$BIN" --jar "$JAR" --prompts "$PROMPTS" --limit "$LIMIT" \
                    --new-tokens "${NEW_TOKENS_05B:-64}" --threads "$THREADS" --repeat "$REPEAT" \
                    --specula-target fp32="$M/qwen05b-shape-onnx" --specula-target int8a8="$M/qwen05b-shape-int8-a8" \
                    --specula-target int8b128a8="$M/qwen05b-shape-int8-b128-a8" \
                    --specula-target int4a8="$M/qwen05b-shape-int4-b32-a8" \
                    --specula-target int4b128a8="$M/qwen05b-shape-int4-b128-a8" \
                    --specula-policies plain --modes plain $SPIN \
                    --gguf f32="$M/qwen05b-f32.gguf" --gguf f16="$M/qwen05b-f16.gguf" \
                    --gguf q8_0="$M/qwen05b-q8_0.gguf" --gguf q4_0="$M/qwen05b-q4_0.gguf" \
                    --json "$OUT/bench-qwen05b.json" --markdown "$OUT/bench-qwen05b.md" ;;
            qwen05b-v152k|hf)
                draft=() policies=plain modes=plain
                if [ "$c" = hf ]; then
                    base=$HF_NAME; name="$HF_NAME ($HF_MODEL)"
                    if [ -n "${HF_DRAFT:-}" ]; then
                        name="$HF_NAME ($HF_MODEL, draft $HF_DRAFT)"; policies=plain,fixed:4,goodput
                        modes=plain,draft,lookup; draft=(--specula-draft "$M/$HF_NAME-draft-onnx")
                        for t in f32 f16 q8_0 q4_0; do draft+=(--draft-gguf "$t=$M/$HF_NAME-draft-$t.gguf"); done
                    fi
                else base=qwen05b-v152k; name="0.5B-class body at Qwen2.5's 151,936-row vocabulary (random weights)"; fi
                "$PYTHON" "$HERE/bench.py" --name "$name" --bin "$BIN" --jar "$JAR" --prompts "$PROMPTS" \
                    --limit "$LIMIT" --new-tokens "${NEW_TOKENS_05B:-64}" --threads "$THREADS" --repeat "$REPEAT" \
                    --specula-target fp32="$M/$base-onnx" --specula-target int8a8="$M/$base-int8-a8" \
                    --specula-target int8b128a8="$M/$base-int8-b128-a8" \
                    --specula-target int4a8="$M/$base-int4-b32-a8" --specula-target int4b128a8="$M/$base-int4-b128-a8" \
                    --specula-policies "${SPECULA_POLICIES_LARGE:-$policies}" "${draft[@]}" \
                    ${SPECULA_PROPOSERS_LARGE:+--specula-proposers "$SPECULA_PROPOSERS_LARGE"} \
                    --modes "${MODES_LARGE:-$modes}" --lookup-max "${LOOKUP_MAX:-4}" \
                    --draft-max "${DRAFT_MAX:-4}" $SPIN \
                    --gguf f32="$M/$base-f32.gguf" --gguf f16="$M/$base-f16.gguf" \
                    --gguf q8_0="$M/$base-q8_0.gguf" --gguf q4_0="$M/$base-q4_0.gguf" \
                    --json "$OUT/bench-$c.json" --markdown "$OUT/bench-$c.md" ;;
        esac
    done
    log "results in $OUT"
fi
