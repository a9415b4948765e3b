"""train-griffin: a GRIFFIN draft head (arXiv 2502.11018) for the embedded target, trained token-alignably.

    python -m specula_tools train-griffin --target TARGET_ONNX_DIR --target-hf TARGET_HF --draft DRAFT_ONNX_DIR \\
        --work WORK_DIR --out HEAD_DIR [--stage1-out DIR] [--minutes 20,12,13] [--seed 1234]
    python -m specula_tools train-griffin ... --random-only --out DIR [--gate-report gate.txt]

The head (griffin_model.py) reads the target's post-norm last hidden state f_t with the next token x_{t+1} and
outputs logits for x_{t+2} plus ``regress`` ~ f_{t+1}, which feeds the next drafted node.

Data. The Python stdlib training split of pair_data (files not held out). Random windows of --seq-len tokens; the
target (TARGET_HF, the float32 rebuild of the ONNX target made by onnx-to-hf) computes f and p = softmax(lm_head f)
in torch without gradients. Stage 1 computes them on the fly and keeps every window's tokens and f (float16) in
memory; stages 2 and 3 draw windows from that pool (no second target pass).

Training (one stage per number in --minutes, stage j chains j forwards; each stage continues from the previous
one's weights, with a fresh optimizer and its own warmup + cosine over its wall-time budget):
  forward 1 reads the real features (plus U(-noise, +noise) in the stages listed by --noise-stages);
  forward m >= 2 at position t reads forward m-1's DETACHED regress at t-1 (its estimate of f_t) and attends to
  the real features' keys at positions <= t-m+1 and to one key of each earlier forward k (2 <= k < m) at t-(m-k),
  which is the context a depth-m draft has (proper -inf masks);
  loss per forward = --w-reg * SmoothL1(regress, f_{t+1}) + --w-ce * soft-CE(p_{t+1}, q) (+ --w-topk * CE over the
  target's top-10 tokens from stage 2 on), averaged over the positions the mask keeps; the forwards' losses are
  summed, one optimizer step per batch.
  Token-alignable mask (--align coded, GRIFFIN's released code): forward m trains position t only if every
  shallower forward k had the data token x_{t+2-(m-1-k)} ... i.e. hit_k(t - (m-1-k)) for k < m, where hit_k(t) =
  [x_{t+2} in the top-3 of forward k's logits at t]. --align chain uses hit_k(t - (m-k)) (the drafted chain that
  actually feeds position t), --align none trains every position.
With a draft vocabulary (--draft-vocab N: the N most frequent training-split tokens), the head's logits cover those
tokens only and p is renormalised over them; the ONNX graph still writes full-width logits (-1e9 elsewhere).

Outputs: HEAD_DIR (and --stage1-out for the stage-1 weights): model.onnx, config.json, griffin.json (settings,
losses, measurements), the target's tokenizer.json, tokenizer_config.json, generation_config.json. Each export is
checked against torch with ONNX Runtime (prefill of 40 pairs, then a 3-node tree step over that past): max abs diff
<= 1e-3 on logits and regress, else exit 1.

Evaluation (--eval-prompts held-out prompts, greedy target continuations of --eval-gen tokens, computed with the
ONNX target and the ONNX head; eval_pair's prompt picker): step-1..3 accuracy along greedy chains (depth-k draft
top-1 == target token, given the shallower drafts were right), mean accepted tokens per round for gamma = 1..8
(greedy chain, bonus included) for the head and the embedded draft, ms per call.
"""
import argparse
import datetime
import json
import math
import os
import sys
import time

import numpy as np

from . import griffin_model as gm
from . import pair_data

TINY = "models-tiny/src/main/resources/dev/specula/models/tiny"
DRAFT_BENCH_MS = 0.27  # the embedded draft's call in docs/benchmarks.md (2026-11-22), which the 0.45 ms budget assumes


class Log:
    def __init__(self, path=None):
        self.fh = open(path, "a", encoding="utf-8") if path else None

    def __call__(self, msg):
        line = time.strftime("%H:%M:%S ", time.gmtime()) + msg
        print(line, flush=True)
        if self.fh:
            self.fh.write(line + "\n")
            self.fh.flush()


def parse(argv):
    p = argparse.ArgumentParser(prog="train-griffin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True, help="exported target directory (model.onnx with last_hidden_state)")
    p.add_argument("--target-hf", required=True, help="the target's HF checkpoint (onnx-to-hf of --target)")
    p.add_argument("--draft", required=True, help="the embedded model draft's directory (baseline, timing)")
    p.add_argument("--out", required=True, help="output directory of the final head")
    p.add_argument("--work", help="work directory (log, checkpoints, eval cache); default: the parent of --out")
    p.add_argument("--stage1-out", help="also export the stage-1 weights here (the stage-1-only ablation)")
    p.add_argument("--random-only", action="store_true", help="export a randomly initialised head and time it (the gate)")
    p.add_argument("--gate-report", help="with --random-only: write the timing table here")
    p.add_argument("--eval-only", action="store_true", help="evaluate --out (an exported head) and the draft; no training")
    p.add_argument("--minutes", default="20,12,13", help="wall-time budget per stage; stage j chains j forwards")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--intermediate", type=int, default=384, help="decoder MLP width I (down projects to 2H)")
    p.add_argument("--emlp", type=int, default=256, help="token-guided fusion MLP width I_e")
    p.add_argument("--draft-vocab", type=int, default=1024, help="0 = full vocabulary")
    p.add_argument("--no-fusion", action="store_true", help="u = fc([emb; h]) only (ablation)")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", default="1e-3,6e-4,6e-4", help="peak learning rate per stage")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--clip", type=float, default=0.5, help="gradient value clipping (GRIFFIN clips values at 0.5)")
    p.add_argument("--noise", type=float, default=0.1, help="U(-noise, noise) added to the real input features")
    p.add_argument("--noise-stages", default="1", help="stages whose real inputs get the noise")
    p.add_argument("--w-reg", type=float, default=1.0)
    p.add_argument("--w-ce", type=float, default=0.1)
    p.add_argument("--w-topk", type=float, default=0.5)
    p.add_argument("--topk", type=int, default=10, help="the top-K distillation term's K (stages >= 2)")
    p.add_argument("--align", choices=["coded", "chain", "none"], default="coded")
    p.add_argument("--align-topk", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-prompts", type=int, default=40)
    p.add_argument("--eval-prompt-len", type=int, default=256)
    p.add_argument("--eval-gen", type=int, default=128)
    p.add_argument("--gammas", default="1..8")
    p.add_argument("--timing-runs", type=int, default=400)
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- shared pieces


def load_target_config(target_dir):
    with open(os.path.join(target_dir, "config.json")) as fh:
        return json.load(fh)


def draft_vocabulary(tokens, size, vocab):
    """The `size` most frequent ids of the training stream (ties by id), sorted; None for the full vocabulary."""
    if not size or size >= vocab:
        return None
    counts = np.bincount(tokens.astype(np.int64), minlength=vocab)
    order = np.argsort(-counts, kind="stable")
    return np.sort(order[:size])


def timing_table(head_path, head_cfg, draft_dir, runs, pasts=(128,), lengths=(1, 4), threads=(1, 2)):
    """Median ms of one ONNX Runtime call, head vs the embedded draft's model_packed.onnx, measured round-robin."""
    rows = []
    for th in threads:
        for past in pasts:
            for s in lengths:
                hs = gm.ort_session(head_path, th)
                ds = gm.ort_session(os.path.join(draft_dir, "model_packed.onnx"), th)
                r = gm.time_round_robin({"head": (hs, gm.head_timing_feeds(head_cfg, s, past)),
                                         "draft": (ds, gm.draft_timing_feeds(draft_dir, ds, s, past))}, runs)
                rows.append(dict(threads=th, s=s, past=past, head_ms=round(r["head"], 4), draft_ms=round(r["draft"], 4),
                                 ratio=round(r["head"] / r["draft"], 3)))
    return rows


def format_timing(rows):
    out = ["| threads | s | past | head ms | draft ms | head/draft |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['threads']} | {r['s']} | {r['past']} | {r['head_ms']:.3f} | {r['draft_ms']:.3f} | {r['ratio']:.2f} |")
    return "\n".join(out)


def tok_stream_heldout(a):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(a.target, "tokenizer.json"))
    root, _, held = pair_data.split_corpus()
    return load_stream(tok, held, root)[0]


def target_argmax_coverage(a, held_tokens, draft_ids, torch, n=32768, seq=512):
    from transformers import AutoModelForCausalLM

    target = AutoModelForCausalLM.from_pretrained(a.target_hf, dtype=torch.float32).eval()
    inside = np.zeros(target.config.vocab_size, bool)
    inside[draft_ids] = True
    hits, total = 0, 0
    with torch.no_grad():
        for i in range(0, min(n, len(held_tokens)) - seq + 1, seq):
            x = torch.from_numpy(held_tokens[i:i + seq].astype(np.int64))[None]
            am = target(input_ids=x).logits[0].argmax(-1).numpy()
            hits += int(inside[am].sum())
            total += len(am)
    return hits / max(1, total)


def make_head(a, tcfg, embed, draft_ids):
    cfg = gm.default_config(tcfg, a.intermediate, a.emlp, None if draft_ids is None else len(draft_ids),
                            fusion=not a.no_fusion)
    return gm.build_head(cfg, embed, draft_ids)


def load_stream(tok, rels, root):
    texts = [t for t in (pair_data.read_text(root, r) for r in rels) if t]
    return pair_data.encode_stream(tok, texts), len(texts)


def export_checked(head, out_dir, target_dir, info, log):
    gm.write_dir(head, out_dir, target_dir, info=info)
    chk = gm.verify_onnx(head, os.path.join(out_dir, "model.onnx"))
    log(f"ONNX check {out_dir}/model.onnx: logits max|diff| {chk['max_abs_diff_logits']:.2e}, regress "
        f"{chk['max_abs_diff_regress']:.2e}, present {chk['max_abs_diff_present']:.2e} -> {'ok' if chk['ok'] else 'FAILED'}")
    return chk


# ---------------------------------------------------------------------------------------------- gate


def run_gate(a, log, tcfg, embed, draft_ids, train_tokens, torch):
    torch.manual_seed(a.seed)
    head = make_head(a, tcfg, embed, draft_ids)
    n = gm.trainable_params(head)
    info = {"what": "randomly initialised GRIFFIN head (interface and timing gate only; not trained)",
            "seed": a.seed, "trainable_parameters": n,
            "draft_vocab_ids": None if draft_ids is None else draft_ids.tolist(),
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    chk = export_checked(head, a.out, a.target, info, log)
    rows = timing_table(os.path.join(a.out, "model.onnx"), head.cfg, a.draft, a.timing_runs)
    info.update(onnx_check=chk, timing_ms=rows)
    cfg = head.cfg
    text = [f"GRIFFIN head timing gate, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"head: {a.out}/model.onnx (random init, seed {a.seed}), {n} trainable parameters; "
            f"H {cfg['hidden_size']}, I {cfg['intermediate_size']}, I_e {cfg['emlp_size']}, draft vocab "
            f"{cfg['draft_vocab_size']} of {cfg['vocab_size']}, fusion {cfg['token_guided_fusion']}; "
            f"{os.path.getsize(os.path.join(a.out, 'model.onnx')) / 1e6:.2f} MB",
            f"draft: {a.draft}/model_packed.onnx (logits_to_keep 0: every row)",
            "one ONNX Runtime call, CPU EP, intra-op threads as listed, inter-op 1, no spinning; median of "
            f"{a.timing_runs} after 30 warm-up calls, head and draft called in turn (shared 2-core machine)",
            "", format_timing(rows), "",
            f"ONNX vs torch: logits {chk['max_abs_diff_logits']:.1e}, regress {chk['max_abs_diff_regress']:.1e} "
            f"({'ok' if chk['ok'] else 'FAILED'})"]
    if draft_ids is not None:
        # why a draft vocabulary: the same head with the full-width lm_head, and the draft vocabulary's coverage
        import tempfile

        torch.manual_seed(a.seed)
        full = gm.build_head(dict(cfg, draft_vocab_size=cfg["vocab_size"]), embed, None)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "full.onnx")
            gm.export_onnx(full, path)
            fr = timing_table(path, full.cfg, a.draft, a.timing_runs, lengths=(1,), threads=(1,))[0]
        counts = np.bincount(train_tokens.astype(np.int64), minlength=cfg["vocab_size"])
        cov = float(counts[draft_ids].sum() / counts.sum())
        text.append(f"same head with the full {cfg['vocab_size']}-token lm_head: {fr['head_ms']:.3f} ms (draft "
                    f"{fr['draft_ms']:.3f} ms in the same run, ratio {fr['ratio']:.2f}), s=1, 1 thread")
        text.append(f"draft vocabulary: the {len(draft_ids)} most frequent training-split tokens cover {cov:.4f} of "
                    "the training tokens")
        info["full_vocab_timing_ms"] = fr
        info["draft_vocab_train_coverage"] = cov
        am = target_argmax_coverage(a, tok_stream_heldout(a), draft_ids, torch)
        text.append(f"... and {am:.4f} of the target's argmax tokens on the first 32768 held-out tokens (teacher forcing)")
        info["draft_vocab_target_argmax_coverage_heldout"] = am
    s1 = [r for r in rows if r["threads"] == 1 and r["s"] == 1][0]
    norm = s1["ratio"] * DRAFT_BENCH_MS
    text.append(f"gate (<= ~0.45 ms, s=1, 1 thread, a budget set for the draft at its benchmarked {DRAFT_BENCH_MS} ms): "
                f"{s1['head_ms']:.3f} ms measured next to the draft's {s1['draft_ms']:.3f} ms; scaled to the draft's "
                f"{DRAFT_BENCH_MS} ms: {norm:.3f} ms -> {'PASS' if norm <= 0.45 else 'OVER'}")
    with open(os.path.join(a.out, "griffin.json"), "w") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    log("\n".join(text))
    if a.gate_report:
        with open(a.gate_report, "w") as fh:
            fh.write("\n".join(text) + "\n")
    return 0 if chk["ok"] else 1


# ---------------------------------------------------------------------------------------------- main


def main(argv):
    a = parse(argv)
    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    torch.set_num_threads(a.threads)
    work = a.work or os.path.dirname(os.path.abspath(a.out))
    os.makedirs(work, exist_ok=True)
    log = Log(os.path.join(work, "train_griffin_log.txt"))
    log(f"train-griffin {' '.join(argv)} | torch {torch.__version__}")
    tcfg = load_target_config(a.target)
    tok = Tokenizer.from_file(os.path.join(a.target, "tokenizer.json"))
    root, train_files, held_files = pair_data.split_corpus()
    t = time.time()
    train_tokens, n_train_files = load_stream(tok, train_files, root)
    log(f"corpus {root}: {n_train_files} training files, {len(train_tokens)} tokens ({time.time() - t:.0f}s)")
    sd = load_file(os.path.join(a.target_hf, "model.safetensors"))
    embed = sd["model.embed_tokens.weight"].float()
    draft_ids = draft_vocabulary(train_tokens, a.draft_vocab, tcfg["vocab_size"])
    if a.random_only:
        return run_gate(a, log, tcfg, embed, draft_ids, train_tokens, torch)
    raise SystemExit("train-griffin: training not written yet")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
