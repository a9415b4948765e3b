"""The ``qwen-vocab`` fixture: a random-init Qwen2 with Qwen2.5's vocabulary (151,936 logits), for long prompts.

    python -m specula_tools fixtures OUT_DIR --only large-vocab

Writes OUT_DIR/models/qwen-vocab/:
  model.onnx            exported with the ``logits_to_keep`` input (``export``'s default)
  model-no-keep.onnx    the same weights exported ``--no-logits-to-keep`` (logits of every position, like
                        third-party exports and the older fixtures)
  model.onnx_data       the weights of both graphs, stored once (``share-weights``), as float16
                        (``onnx_fp16_weights``: every computation stays float32)
  reference.json        a prompt of 2,000 random token ids and transformers' greedy continuation of it
  config.json, tokenizer files: the qwen2 fixture's 512-entry tokenizer (ids above 511 decode to nothing);
  the Java tests feed token ids, not text.

The model is 1 layer, hidden 8, 2 heads (1 KV head), intermediate 16, max_position_embeddings 4096. Its weights
are rounded to float16 before the export and the reference, so the graphs compute exactly the model that
transformers ran. Seeds are tried until the greedy path stays 1e-3 away from ties (top1 - top2 logit), has at
least 8 distinct ids (a 1-layer random model easily repeats one token forever), and its first token changes when
the prompt's first 1,000 ids are replaced: the start of the prompt matters, so a prefill that loses it shows.
"""
import json
import os
import shutil

VOCAB = 151_936
PROMPT_TOKENS = 2_000
NEW_TOKENS = 16
MIN_MARGIN = 1e-3
MIN_DISTINCT = 8
INIT_STD = 1.0
SEEDS = 12
PROMPT_SEED = 2026


def _greedy(model, prompt, n):
    """transformers greedy ids and the smallest top1 - top2 margin, computing only the last position's logits."""
    import torch
    from transformers import DynamicCache

    ids, margins = [], []
    cache = DynamicCache(config=model.config)
    x = torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(n):
            out = model(x, past_key_values=cache, use_cache=True, logits_to_keep=1)
            logits = out.logits[0, -1].float()
            top = torch.topk(logits, 2)
            margins.append(float(top.values[0] - top.values[1]))
            token = int(top.indices[0])
            ids.append(token)
            x = torch.tensor([[token]])
    return ids, min(margins)


def build(out_dir, tmp, tokenizer_dir):
    """Builds models/qwen-vocab from the qwen2 fixture's tokenizer directory; returns its path."""
    import numpy as np
    import torch

    from . import export_core, onnx_fp16_weights, onnx_verify, share_weights
    from .make_random import make_random

    torch.set_num_threads(1)
    prompt = np.random.default_rng(PROMPT_SEED).integers(0, VOCAB, size=PROMPT_TOKENS).tolist()
    for seed in range(SEEDS):
        hf_dir = os.path.join(tmp, f"hf-qwen-vocab-{seed}")
        make_random("qwen2", hf_dir, tokenizer_dir=tokenizer_dir, layers=1, hidden=8, heads=2, kv_heads=1,
                    intermediate=16, vocab=VOCAB, seed=seed, max_positions=4096, init_std=INIT_STD)
        model, tokenizer = export_core.load(hf_dir)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
        greedy, margin = _greedy(model, prompt, NEW_TOKENS)
        swapped = prompt[PROMPT_TOKENS // 2:] + prompt[PROMPT_TOKENS // 2:]
        first_swapped = _greedy(model, swapped, 1)[0][0]
        if margin >= MIN_MARGIN and len(set(greedy)) >= MIN_DISTINCT and first_swapped != greedy[0]:
            break
        print(f"fixtures: qwen-vocab seed {seed}: top1-top2 {margin:.2e}, {len(set(greedy))} distinct ids, first "
              f"token {'changes' if first_swapped != greedy[0] else 'same'} without the prompt's start; next seed")
    else:
        raise SystemExit(f"fixtures: no seed in 0..{SEEDS - 1} kept the qwen-vocab greedy path off ties")
    model.save_pretrained(hf_dir)  # the float16-rounded weights

    dest = os.path.join(out_dir, "models", "qwen-vocab")
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    graphs = {}
    for name, keep in (("model.onnx", True), ("model-no-keep.onnx", False)):
        work = os.path.join(tmp, f"export-{name}")
        os.makedirs(work)
        path, _ = export_core.export_onnx(model, work, logits_to_keep=keep, graph="torch")
        if not onnx_verify.verify(path, model, tokenizer):
            raise SystemExit(f"fixtures: verification of qwen-vocab {name} failed")
        half = os.path.join(work, "fp16-" + name)
        onnx_fp16_weights.convert(path, half)
        dec = onnx_verify.OrtDecoder(half, model, False, False, False)
        if dec.keep != keep:
            raise SystemExit(f"fixtures: qwen-vocab {name}: logits_to_keep input present = {dec.keep}")
        ort = onnx_verify.ort_greedy(dec, prompt, NEW_TOKENS)
        if ort != greedy:
            raise SystemExit(f"fixtures: qwen-vocab {name}: ONNX Runtime greedy {ort} != transformers {greedy}")
        graphs[name] = half
    share_weights.main([graphs["model.onnx"], graphs["model-no-keep.onnx"], "--out", dest,
                        "--names", "model.onnx", "model-no-keep.onnx"])
    export_core.write_side_files(hf_dir, dest, model, tokenizer,
                                 dict(with_hidden=False, packed=False, fp16=False, opset=18, logits_to_keep=True))
    with open(os.path.join(dest, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({
            "generator": f"specula_tools make-random --family qwen2 --tokenizer <qwen2 fixture> --layers 1 --hidden 8 "
                         f"--heads 2 --kv-heads 1 --intermediate 16 --vocab {VOCAB} --seed {seed} --init-std {INIT_STD} "
                         "--max-positions 4096; weights rounded to float16; export (model.onnx) and export "
                         "--no-logits-to-keep (model-no-keep.onnx); onnx_fp16_weights; share-weights",
            "reference": "transformers greedy (argmax of the last position, KV cache); ONNX Runtime 1.30 CPU greedy "
                         "of both graphs verified identical",
            "prompt_seed": PROMPT_SEED,
            "min_margin": round(margin, 6),
            "first_token_without_prompt_start": first_swapped,
            "prompt_ids": prompt,
            "greedy_ids": greedy,
        }, f)
        f.write("\n")
    return dest
