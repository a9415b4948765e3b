"""``export``: export a local Hugging Face causal LM to ONNX with a KV cache.

Families (config.json model_type): llama (incl. rope_type llama3), qwen2, gpt2, qwen3, mistral, phi3, gemma2,
gemma3_text; any other model_type is refused with the list (export_families.SUPPORTED).

    python -m specula_tools export MODEL_DIR OUT_DIR [--with-hidden] [--packed | --with-packed] [--fp16] [--opset N]
        [--no-logits-to-keep]

--with-packed writes both graphs: model.onnx (attention_mask) and model_packed.onnx (the --packed graph), their
weights stored once in model.onnx_data (share_weights). The starter's default batching (the unpadded path) and the
CLI decode on model_packed.onnx when it is there (a cheaper call; trees need it); the padded batch path on
model.onnx. Both are verified.

Layout (Optimum ``text-generation-with-past`` names):
  inputs   input_ids int64 [b,s]; attention_mask int64 [b,past+s]   (or, with --packed, attention_bias
           float32 [1,1,s,past+s]); position_ids int64 [b,s]; logits_to_keep int64 scalar k (not with
           --no-logits-to-keep: logits of the last k positions only; 0 = every position);
           past_key_values.{i}.key / .value [b,kv_heads,past,head_dim] (float32, float16 with --fp16)
  outputs  logits float32 [b,k,vocab] ([b,s,vocab] with --no-logits-to-keep); present.{i}.key / .value [b,kv_heads,past+s,head_dim];
           last_hidden_state [b,s,hidden] (after the final norm) with --with-hidden.

The causal mask is built from *physical* cache indices (new token j sits at physical slot past+j and sees the
slots <= past+j whose attention_mask is 1); positions come only from position_ids. So masked "holes" in the
cache are harmless. With --packed the bias is the whole mask (0 = attend, -1e9 = masked; -inf works too).
Sliding-window layers (Mistral, Phi-3 with sliding_window, Gemma) see the last `sliding_window` *visible* slots
of each query, i.e. the window counts logical positions, holes excluded (export_families.py).
Every export is verified against transformers with ONNX Runtime (see onnx_verify.py); failure exits non-zero.
"""
import argparse
import os
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(prog="specula_tools export",
                                description="Export a HF causal LM to ONNX (text-generation-with-past layout).")
    p.add_argument("model_dir")
    p.add_argument("out_dir")
    p.add_argument("--with-hidden", action="store_true", help="extra output last_hidden_state (after final norm)")
    p.add_argument("--packed", action="store_true",
                   help="float32 input attention_bias [1,1,s,past+s] instead of attention_mask")
    p.add_argument("--with-packed", action="store_true",
                   help="also write model_packed.onnx (the --packed graph), sharing model.onnx_data with model.onnx")
    p.add_argument("--fp16", action="store_true",
                   help="float16 weights, compute and KV cache (logits stay float32)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (<= 20 for ONNX Runtime 1.29; default 18)")
    p.add_argument("--no-logits-to-keep", action="store_true",
                   help="no logits_to_keep input: logits of every input position (the layout before issue 11)")
    p.add_argument("--graph", choices=("auto", "fused", "torch"), default="auto",
                   help="fused: ONNX Runtime's fused operators (llama, qwen2, qwen3, mistral, gemma2, gemma3_text, "
                        "gpt2; export_fused.py); torch: torch.onnx's graph; auto (default): fused when the model "
                        "allows it and it passes verification, else torch")
    p.add_argument("--no-verify", action="store_true", help="skip the verification (not recommended)")
    a = p.parse_args(argv)
    if a.packed and a.with_packed:
        p.error("--packed writes the packed graph alone as model.onnx, --with-packed both graphs: choose one")
    return a


def main(argv):
    a = parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from . import export_core, onnx_verify

    if a.opset > 20:
        print(f"export: warning: opset {a.opset} > 20 may not load in ONNX Runtime 1.29 (the Java side)",
              file=sys.stderr)
    t0 = time.time()
    model, tokenizer = export_core.load(a.model_dir, fp16=a.fp16)  # refuses an unsupported model_type by name
    os.makedirs(a.out_dir, exist_ok=True)
    options = dict(with_hidden=a.with_hidden, fp16=a.fp16, opset=a.opset, logits_to_keep=not a.no_logits_to_keep)
    if a.with_packed:
        holder = [model]
        del model  # _export_both drops the checkpoint before it joins the graphs' weights
        return _export_both(a, holder, tokenizer, options, t0)
    kind = a.graph
    while True:
        onnx_path, graph = export_core.export_onnx(model, a.out_dir, packed=a.packed, graph=kind, **options)
        export_core.write_side_files(a.model_dir, a.out_dir, model, tokenizer,
                                     dict(options, packed=a.packed, graph=graph))
        size = sum(os.path.getsize(os.path.join(a.out_dir, f)) for f in os.listdir(a.out_dir)
                   if f.startswith("model.onnx"))
        print(f"export: wrote {onnx_path} ({graph} graph, {size / 1e6:.2f} MB) in {time.time() - t0:.1f}s")
        if a.no_verify:
            return 0
        # Verify against the transformers model in the exported precision (float16 model with --fp16).
        ok = onnx_verify.verify(onnx_path, model, tokenizer, with_hidden=a.with_hidden, packed=a.packed,
                                fp16=a.fp16)
        if ok or not _retry_torch(kind, graph):
            break
        kind = "torch"
    print(f"export: {'OK' if ok else 'VERIFICATION FAILED'} ({time.time() - t0:.1f}s total)")
    return 0 if ok else 1


def _retry_torch(asked, written):
    """--graph auto wrote the fused graph and it failed verification: say so, and write the torch.onnx one instead
    (the same model in standard operators, whose rounding differs; seen at GPT-2 124M's shape, where the fused
    graph's padded rows differed from the rows alone by 3.6e-4 against a limit of 2.5e-4)."""
    if asked != "auto" or written != "fused":
        return False
    print("export: the fused graph failed verification (above); writing the torch.onnx graph instead "
          "(--graph fused keeps the fused one and fails)")
    return True


def _export_both(a, holder, tokenizer, options, t0):
    """--with-packed: model.onnx and model_packed.onnx into a.out_dir, their weights once in model.onnx_data. Each
    graph is exported and verified on its own first; then the checkpoint (holder[0], the only reference) is
    dropped, so joining the two graphs' weights takes no more memory than an export. Returns the exit code."""
    import gc
    import tempfile

    from . import export_core, onnx_verify, share_weights

    model = holder.pop()
    with tempfile.TemporaryDirectory(prefix="specula-export-", dir=a.out_dir) as tmp:
        asked = a.graph
        while True:
            written = []
            ok = True
            for packed in (False, True):
                part = os.path.join(tmp, asked, "packed" if packed else "mask")
                os.makedirs(part)
                path, kind = export_core.export_onnx(model, part, packed=packed, graph=asked, **options)
                written.append((path, kind))
                if not a.no_verify:
                    # against the transformers model in the exported precision (float16 model with --fp16)
                    ok = onnx_verify.verify(path, model, tokenizer, with_hidden=a.with_hidden, packed=packed,
                                            fp16=a.fp16) and ok
            if ok or not _retry_torch(asked, written[0][1]):
                break
            asked = "torch"
        if written[0][1] != written[1][1]:
            raise SystemExit(f"export: the mask graph was written {written[0][1]}, the packed one {written[1][1]}: "
                             "pass --graph torch to write both the same way")
        export_core.write_side_files(a.model_dir, a.out_dir, model, tokenizer,
                                     dict(options, packed=False, with_packed=True, graph=written[0][1]))
        del model
        gc.collect()
        for stale in ("model.onnx", "model_packed.onnx", "model.onnx_data"):
            if os.path.exists(os.path.join(a.out_dir, stale)):
                os.remove(os.path.join(a.out_dir, stale))
        share_weights.share(written[0][0], written[1][0], a.out_dir, names=("model.onnx", "model_packed.onnx"),
                            allow_unshared=True)
    size = sum(os.path.getsize(os.path.join(a.out_dir, f)) for f in os.listdir(a.out_dir) if f.startswith("model"))
    print(f"export: wrote {a.out_dir}/model.onnx and model_packed.onnx ({written[0][1]} graphs, {size / 1e6:.2f} MB "
          f"together) in {time.time() - t0:.1f}s")
    if a.no_verify:
        return 0
    print(f"export: {'OK' if ok else 'VERIFICATION FAILED'} ({time.time() - t0:.1f}s total)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
