"""train-griffin: a GRIFFIN draft head (arXiv 2502.11018) for a target exported --with-hidden, trained token-alignably.

    python -m specula_tools train-griffin --target TARGET_ONNX_DIR [--corpus PATH ...] --work WORK_DIR --out HEAD_DIR
        [--target-hf TARGET_HF] [--draft DRAFT_ONNX_DIR] [--stage1-out DIR] [--minutes 20,12,13] [--seed 1234]
    python -m specula_tools train-griffin ... --random-only --out DIR [--gate-report gate.txt]

The head (griffin_model.py) reads the target's post-norm last hidden state f_t with the next token x_{t+1} and
outputs logits for x_{t+2} plus ``regress`` ~ f_{t+1}, which feeds the next drafted node.

Data. The training documents of --corpus (griffin_corpus.py: text files, directories, JSONL; a hashed held-out
split), by default the Python stdlib training split of pair_data. Random windows of --seq-len tokens; the target
(TARGET_HF, by default the float32 rebuild of the ONNX target made by onnx-to-hf into WORK/target-hf) computes f in
torch without gradients (bf16 autocast unless --no-bf16), and p = softmax(lm_head f) restricted to the draft
vocabulary. Stage 1 computes them on the fly and keeps a uniform sample of its windows (--pool-windows, at most
--pool-mb of float16 features) in memory; stages 2 and 3 draw windows from that pool (no second target pass).

Training (one stage per number in --minutes, stage j chains j forwards; each stage continues from the previous
one's weights, with a fresh AdamW (0.9, 0.95) and its own warmup + cosine over its wall-time budget):
  forward 1 reads the real features (plus U(-noise, +noise) in the stages listed by --noise-stages);
  forward m >= 2 at row t reads forward m-1's DETACHED regress at row t-1 (its estimate of f_t) and attends to
  forward 1's keys at rows <= t-m+1 (real features) and to one key of each later forward k (2 <= k <= m) at row
  t-(m-k): the context of a depth-m draft (proper -inf masks);
  loss per forward = --w-reg * SmoothL1(regress, f_{t+1}) + --w-ce * soft-CE(p_{t+1}, q) (+ --w-topk * the same CE
  over the target's top-10 tokens from stage 2 on), averaged over the rows the mask keeps; the forwards' losses are
  summed, one optimizer step per batch, gradients clipped by value (--clip).
  Token-alignable mask: hit_k(t) = [the data token x_{t+2} is in the top-3 of forward k's logits at row t].
  --align coded (GRIFFIN's released code, the default): forward m trains row t only if hit_k(t-(m-1-k)) for every
  k < m; --align chain uses hit_k(t-(m-k)) (the drafted chain that feeds row t); --align none keeps every row.
With a draft vocabulary (--draft-vocab N: the N most frequent training-split tokens), the head's logits cover those
tokens only and p is renormalised over them; the ONNX graph still writes full-width logits (-1e9 elsewhere).

Outputs: HEAD_DIR (and --stage1-out for the stage-1 weights): model.onnx, config.json, griffin.json (settings,
losses, measurements), the target's tokenizer.json, tokenizer_config.json, generation_config.json. Each export is
checked against torch with ONNX Runtime (prefill of 40 pairs, then a 3-node tree step over that past): max abs diff
<= 1e-3 on logits and regress, else exit 1.

Evaluation (--eval-prompts held-out prompts, greedy target continuations of --eval-gen tokens, computed with the
ONNX target and the ONNX head; eval_pair's prompt picker): step-1..3 accuracy along greedy chains (depth-k draft
top-1 == target token, given the shallower drafts were right), mean accepted tokens per round for gamma = 1..8
(greedy chain, bonus included) for the head (and the --draft, when given), ms per call next to the draft's call,
or without --draft next to one call of the target.
"""
import argparse
import datetime
import json
import math
import os
import sys
import time

import numpy as np

from . import griffin_corpus as gc
from . import griffin_model as gm

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
    p.add_argument("--target", required=True, help="exported target directory (export --with-hidden: model.onnx "
                   "with last_hidden_state)")
    p.add_argument("--target-hf", help="the target's Hugging Face checkpoint; default: rebuilt from --target by "
                   "onnx-to-hf into WORK/target-hf")
    p.add_argument("--draft", help="a draft model's directory (model_packed.onnx) to evaluate and time next to the "
                   "head; without it the head is evaluated alone and timed against one target step")
    p.add_argument("--corpus", action="append", help="training text: files, directories (recursively, see "
                   "--corpus-ext), .jsonl (text or chat messages); repeatable or comma-separated; default: the "
                   "Python standard library")
    p.add_argument("--corpus-ext", default=gc.DEFAULT_EXTENSIONS, help="file name endings read in --corpus "
                   "directories (comma-separated)")
    p.add_argument("--heldout-percent", type=int, default=gc.DEFAULT_HELDOUT_PERCENT,
                   help="--corpus documents held out for evaluation (by hash of their names)")
    p.add_argument("--token-tables", choices=["auto", "fold", "graph"], default="auto", help="the fusion's token "
                   "terms: folded into [V,H] + [V,I_e] tables, or computed in the graph from the embedding; auto "
                   "folds when the tables take at most --fold-max-mb")
    p.add_argument("--fold-max-mb", type=float, default=256)
    p.add_argument("--pool-mb", type=float, default=2048, help="memory cap of the stage-1 feature pool (with "
                   "--pool-windows)")
    p.add_argument("--out", required=True, help="output directory of the final head")
    p.add_argument("--work", help="work directory (log, checkpoints, eval cache); default: the parent of --out")
    p.add_argument("--stage1-out", help="also export the stage-1 weights here (the stage-1-only ablation)")
    p.add_argument("--random-only", action="store_true", help="export a randomly initialised head and time it (the gate)")
    p.add_argument("--gate-report", help="with --random-only: write the timing table here")
    p.add_argument("--eval-only", action="store_true", help="evaluate --out (an exported head) and the draft; no training")
    p.add_argument("--eval-also", default="", help="comma-separated exported heads evaluated next to --out (ablations)")
    p.add_argument("--init", help="start from this checkpoint (.pt state dict) instead of a random head")
    p.add_argument("--first-stage", type=int, default=1, help="number of the first stage run (with --init)")
    p.add_argument("--minutes", default="20,12,13", help="wall-time budget per stage; stage j chains j forwards")
    p.add_argument("--steps", default="", help="fixed step counts per stage instead (step-based cosine; comparable "
                   "runs on a machine whose load changes), e.g. 1277,897,1033")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--intermediate", type=int, default=384, help="decoder MLP width I (down projects to 2H)")
    p.add_argument("--emlp", type=int, default=256, help="token-guided fusion MLP width I_e")
    p.add_argument("--draft-vocab", type=int, default=1024, help="0 = full vocabulary")
    p.add_argument("--no-fusion", action="store_true", help="u = fc([emb; h]) only (ablation)")
    p.add_argument("--self-distill", type=int, default=0, metavar="N",
                   help="train on N sequences the target writes itself (each a --self-distill-prompt-token window of "
                        "the training split, then --self-distill-tokens of the target's own continuation, half greedy, "
                        "half sampled at --self-distill-temperature) instead of the corpus; 0 = the corpus")
    p.add_argument("--self-distill-prompt", type=int, default=64)
    p.add_argument("--self-distill-tokens", type=int, default=192)
    p.add_argument("--self-distill-temperature", type=float, default=0.7)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--pool-windows", type=int, default=8000, help="stage-1 windows kept for stages 2+ (float16 "
                   "features: 0.2 MB a window at L=256)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", default="3e-3,1.5e-3,1.5e-3", help="peak learning rate per stage")
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
    p.add_argument("--no-bf16", action="store_true", help="no bf16 autocast (target features and head matmuls; the "
                   "weights, losses and the exported graph stay float32)")
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


class Baseline:
    """What the head is timed against: the draft model's packed graph (--draft), else one step of the target."""

    def __init__(self, a):
        if a.draft:
            self.name, self.dir, self.file = "draft", a.draft, "model_packed.onnx"
        else:
            self.name, self.dir, self.file = "target step", a.target, "model.onnx"

    def session(self, threads):
        return gm.ort_session(os.path.join(self.dir, self.file), threads)

    def feeds(self, sess, s, past):
        return gm.draft_timing_feeds(self.dir, sess, s, past)


def timing_table(head_path, head_cfg, base, runs, pasts=(128,), lengths=(1, 4), threads=(1, 2)):
    """Median ms of one ONNX Runtime call, head vs the baseline (Baseline), measured round-robin."""
    rows = []
    for th in threads:
        for past in pasts:
            for s in lengths:
                hs = gm.ort_session(head_path, th)
                bs = base.session(th)
                r = gm.time_round_robin({"head": (hs, gm.head_timing_feeds(head_cfg, s, past)),
                                         "base": (bs, base.feeds(bs, s, past))}, runs)
                rows.append(dict(threads=th, s=s, past=past, head_ms=round(r["head"], 4), base_ms=round(r["base"], 4),
                                 baseline=base.name, ratio=round(r["head"] / r["base"], 3)))
    return rows


def format_timing(rows):
    name = rows[0]["baseline"] if rows else "draft"
    out = [f"| threads | s | past | head ms | {name} ms | head/{name} |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['threads']} | {r['s']} | {r['past']} | {r['head_ms']:.3f} | {r['base_ms']:.3f} | {r['ratio']:.2f} |")
    return "\n".join(out)


def target_argmax_coverage(target_hf, held_tokens, draft_ids, torch, n=32768, seq=512):
    from transformers import AutoModelForCausalLM

    target = AutoModelForCausalLM.from_pretrained(target_hf, dtype=torch.float32).eval()
    inside = np.zeros(target.config.vocab_size, bool)
    inside[draft_ids] = True
    hits, total = 0, 0
    seq = min(seq, len(held_tokens))
    with torch.no_grad():
        for i in range(0, min(n, len(held_tokens)) - seq + 1, seq):
            x = torch.from_numpy(held_tokens[i:i + seq].astype(np.int64))[None]
            am = target(input_ids=x).logits[0].argmax(-1).numpy()
            hits += int(inside[am].sum())
            total += len(am)
    return hits / max(1, total)


def make_head(a, tcfg, embed, draft_ids, lm_head=None):
    cfg = gm.default_config(tcfg, a.intermediate, a.emlp, None if draft_ids is None else len(draft_ids),
                            fusion=not a.no_fusion, token_tables=a.token_tables, fold_max_mb=a.fold_max_mb)
    return gm.build_head(cfg, embed, draft_ids, lm_head)


def resolve_target_hf(a, work, log):
    """--target-hf, or onnx-to-hf of --target into WORK/target-hf (reused when it is already there)."""
    if a.target_hf:
        return a.target_hf
    out = os.path.join(work, "target-hf")
    mark = os.path.join(out, "onnx_to_hf_verified.json")  # written after a verified rebuild only
    if os.path.exists(mark) and _safetensors_files(out):
        log(f"--target-hf not given: reusing {out} (onnx-to-hf of {a.target}, made by an earlier run)")
        return out
    log(f"--target-hf not given: rebuilding the target's Hugging Face checkpoint from {a.target} with onnx-to-hf "
        f"into {out}")
    from . import onnx_to_hf

    t = time.time()
    try:
        model = onnx_to_hf.rebuild(a.target, out)
        ok = onnx_to_hf.verify(a.target, model)
    except (SystemExit, Exception) as e:  # noqa: BLE001 - any failure of the conversion names the option
        raise SystemExit(f"train-griffin: onnx-to-hf cannot rebuild {a.target} ({e}); pass --target-hf with the "
                         "target's Hugging Face checkpoint (the one it was exported from)")
    if not ok:
        raise SystemExit(f"train-griffin: onnx-to-hf's rebuild of {a.target} does not compute what its model.onnx "
                         "computes; pass --target-hf with the target's Hugging Face checkpoint")
    with open(mark, "w") as fh:
        json.dump({"source": os.path.abspath(a.target), "verified": True}, fh)
    log(f"onnx-to-hf: {out} rebuilt and verified against {a.target}/model.onnx ({time.time() - t:.0f}s)")
    return out


def _safetensors_files(hf_dir):
    return sorted(f for f in os.listdir(hf_dir) if f.endswith(".safetensors")) if os.path.isdir(hf_dir) else []


def load_target_tables(hf_dir, torch):
    """(embedding [V,H], output layer [V,H] or None when tied) float32, read alone from the (possibly sharded)
    safetensors checkpoint."""
    from safetensors import safe_open

    found = {}
    for f in _safetensors_files(hf_dir):
        with safe_open(os.path.join(hf_dir, f), framework="pt") as fh:
            for key in fh.keys():
                if key.endswith("embed_tokens.weight") or key == "lm_head.weight":
                    found["embed" if key.endswith("embed_tokens.weight") else "lm_head"] = fh.get_tensor(key).float()
    if "embed" not in found:
        raise SystemExit(f"train-griffin: no embed_tokens.weight in {hf_dir}'s safetensors (--target-hf)")
    # an untied target's output layer; tied targets store none
    return found["embed"], found.get("lm_head")


def load_corpus_tokens(a, tok, tcfg, log):
    """(Corpus, training tokens [N], held-out tokens [M], separator id); errors name --corpus / --seq-len."""
    t = time.time()
    corpus = gc.load_corpus(a.corpus, a.corpus_ext, a.heldout_percent, a.target)
    sep = gc.separator_id(tok, tcfg)
    train = gc.encode_docs(tok, corpus.train, sep, tcfg["vocab_size"])
    held = gc.encode_docs(tok, corpus.held, sep, tcfg["vocab_size"])
    log(f"corpus {corpus.what}: {len(corpus.train)} training documents, {len(train)} tokens; {len(corpus.held)} "
        f"held-out documents, {len(held)} tokens; separator id {sep} ({time.time() - t:.0f}s)")
    for what, arr in (("training", train), ("held-out", held)):
        if len(arr) <= a.seq_len + 1:
            raise SystemExit(f"train-griffin: --corpus gives {len(arr)} {what} tokens, too few for one --seq-len "
                             f"{a.seq_len} window; add text or lower --seq-len")
    return corpus, train, held, sep


def export_checked(head, out_dir, target_dir, info, log):
    gm.write_dir(head, out_dir, target_dir, info=info)
    chk = gm.verify_onnx(head, os.path.join(out_dir, "model.onnx"))
    log(f"ONNX check {out_dir}/model.onnx: logits max|diff| {chk['max_abs_diff_logits']:.2e}, regress "
        f"{chk['max_abs_diff_regress']:.2e}, present {chk['max_abs_diff_present']:.2e} -> {'ok' if chk['ok'] else 'FAILED'}")
    return chk


# ---------------------------------------------------------------------------------------------- gate


def run_gate(a, log, tcfg, embed, draft_ids, train_tokens, held_tokens, torch, lm_head=None):
    torch.manual_seed(a.seed)
    head = make_head(a, tcfg, embed, draft_ids, lm_head)
    n = gm.trainable_params(head)
    info = {"what": "randomly initialised GRIFFIN head (interface and timing gate only; not trained)",
            "target": os.path.abspath(a.target), "seed": a.seed, "trainable_parameters": n,
            "draft_vocab_ids": None if draft_ids is None else draft_ids.tolist(),
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    chk = export_checked(head, a.out, a.target, info, log)
    base = Baseline(a)
    rows = timing_table(os.path.join(a.out, "model.onnx"), head.cfg, base, a.timing_runs)
    size_mb = onnx_size_mb(a.out)
    info.update(onnx_check=chk, timing_ms=rows, onnx_mb=round(size_mb, 2))
    cfg = head.cfg
    text = [f"GRIFFIN head timing gate, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
            f"head: {a.out}/model.onnx (random init, seed {a.seed}), {n} trainable parameters; "
            f"H {cfg['hidden_size']}, heads {cfg['num_attention_heads']}/{cfg['num_key_value_heads']} x "
            f"{cfg['head_dim']}, I {cfg['intermediate_size']}, I_e {cfg['emlp_size']}, draft vocab "
            f"{cfg['draft_vocab_size']} of {cfg['vocab_size']}, fusion {cfg['token_guided_fusion']}, token tables "
            f"{cfg['token_tables']}, RoPE {cfg['rope_parameters']['rope_type']}; {size_mb:.2f} MB on disk",
            f"{base.name}: {base.dir}/{base.file}" + (" (logits_to_keep 0: every row)" if a.draft else
                                                      " (one call of the target; logits_to_keep 0)"),
            "one ONNX Runtime call, CPU EP, intra-op threads as listed, inter-op 1, no spinning; median of "
            f"{a.timing_runs} after 30 warm-up calls, head and {base.name} called in turn (shared 2-core machine)",
            "", format_timing(rows), "",
            f"ONNX vs torch: logits {chk['max_abs_diff_logits']:.1e}, regress {chk['max_abs_diff_regress']:.1e}, "
            f"present {chk['max_abs_diff_present']:.1e} ({'ok' if chk['ok'] else 'FAILED'})"]
    if draft_ids is not None:
        text += draft_vocab_report(a, head, embed, lm_head, draft_ids, train_tokens, held_tokens, base, info, torch)
    s1 = [r for r in rows if r["threads"] == 1 and r["s"] == 1][0]
    if a.draft:
        norm = s1["ratio"] * DRAFT_BENCH_MS
        text.append(f"gate (<= ~0.45 ms, s=1, 1 thread, a budget set for the draft at its benchmarked {DRAFT_BENCH_MS} "
                    f"ms): {s1['head_ms']:.3f} ms measured next to the draft's {s1['base_ms']:.3f} ms; scaled to the "
                    f"draft's {DRAFT_BENCH_MS} ms: {norm:.3f} ms -> {'PASS' if norm <= 0.45 else 'OVER'}")
    else:
        text.append(f"head call / target step (s=1, 1 thread): {s1['ratio']:.3f} ({s1['head_ms']:.3f} ms vs "
                    f"{s1['base_ms']:.3f} ms); a chain of gamma drafts costs about gamma x that of a target step")
    with open(os.path.join(a.out, "griffin.json"), "w") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    log("\n".join(text))
    if a.gate_report:
        with open(a.gate_report, "w") as fh:
            fh.write("\n".join(text) + "\n")
    return 0 if chk["ok"] else 1


FULL_VOCAB_TIMING_MAX = 50_000_000  # vocab x hidden above which the gate skips exporting a full-vocabulary twin


def draft_vocab_report(a, head, embed, lm_head, draft_ids, train_tokens, held_tokens, base, info, torch):
    """Why a draft vocabulary: the same head with the full-width lm_head (timed, when small enough to export in
    passing), and the draft vocabulary's coverage of the training tokens and of the target's argmax tokens."""
    import tempfile

    cfg = head.cfg
    V, H = cfg["vocab_size"], cfg["hidden_size"]
    text = []
    if V * H <= FULL_VOCAB_TIMING_MAX:
        torch.manual_seed(a.seed)
        full = gm.build_head(dict(cfg, draft_vocab_size=V), embed, None, lm_head)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "full.onnx")
            gm.export_onnx(full, path)
            fr = timing_table(path, full.cfg, base, a.timing_runs, lengths=(1,), threads=(1,))[0]
        text.append(f"same head with the full {V}-token lm_head: {fr['head_ms']:.3f} ms ({base.name} "
                    f"{fr['base_ms']:.3f} ms in the same run, ratio {fr['ratio']:.2f}), s=1, 1 thread")
        info["full_vocab_timing_ms"] = fr
    else:
        text.append(f"(no full-vocabulary twin timed: {V} x {H} is past {FULL_VOCAB_TIMING_MAX:,} elements)")
    counts = np.bincount(train_tokens.astype(np.int64), minlength=V)
    cov = float(counts[draft_ids].sum() / counts.sum())
    text.append(f"draft vocabulary: the {len(draft_ids)} most frequent training-split tokens cover {cov:.4f} of "
                "the training tokens")
    info["draft_vocab_train_coverage"] = cov
    am = target_argmax_coverage(a.target_hf, held_tokens, draft_ids, torch)
    text.append(f"... and {am:.4f} of the target's argmax tokens on the first 32768 held-out tokens (teacher forcing)")
    info["draft_vocab_target_argmax_coverage_heldout"] = am
    return text


def onnx_size_mb(out_dir):
    """model.onnx plus its external data, if any"""
    return sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir)
               if f.startswith("model.onnx")) / 1e6


# ---------------------------------------------------------------------------------------------- training


def multi_forward_bias(n, m, torch):
    """Additive mask [1,1,n,m n] of forward m (keys: forward 1's n rows, then one block per later forward).
    Query row t sees forward 1 at rows <= t-m+1 (real features) and forward k (2 <= k <= m) at row t-(m-k) only:
    the context of a depth-m draft made after the real context ending at t-m+1."""
    t = torch.arange(n)[:, None]
    r = torch.arange(n)[None, :]
    blocks = [r <= t - m + 1]
    for k in range(2, m + 1):
        blocks.append(r == t - (m - k))
    allowed = torch.cat(blocks, 1)
    return torch.where(allowed, 0.0, float("-inf"))[None, None]


def shifted(x, k, fill):
    """x [B,n] shifted right by k along dim 1 (y[:, t] = x[:, t-k]), `fill` where t-k < 0."""
    if k == 0:
        return x
    y = x.new_full(x.shape, fill)
    y[:, k:] = x[:, :-k]
    return y


class Trainer:
    """One batch = B windows x (L tokens, L target features). Row t (0 <= t < n = L-1) pairs x_{t+1} with f_t and
    is trained to give p_{t+1} (softmax of the target's lm_head on f_{t+1}, over the draft vocabulary) and f_{t+1}."""

    def __init__(self, a, head, torch):
        self.a, self.head, self.torch = a, head, torch
        V = head.embed.shape[0]
        ids = head.draft_ids if head.draft_ids is not None else torch.arange(V)
        self.lm = head.lm_head[ids]  # [Vd, H]: the target's output layer
        to_d = torch.full((V,), -1, dtype=torch.long)
        to_d[ids] = torch.arange(len(ids))
        self.to_d = to_d
        self.biases = {}

    def bias(self, n, m):
        if (n, m) not in self.biases:
            self.biases[(n, m)] = multi_forward_bias(n, m, self.torch)
        return self.biases[(n, m)]

    def losses(self, x, f, forwards, noise, topk_term, align=None):
        """x [B,L] long, f [B,L,H] float32 -> (total loss, stats dict per forward)"""
        torch, a, head = self.torch, self.a, self.head
        F = torch.nn.functional
        B, L, H = f.shape
        n = L - 1
        ids = x[:, 1:]  # x_{t+1}
        pos = torch.arange(n)[None].expand(B, n)
        goal_f = f[:, 1:]  # f_{t+1}
        with torch.no_grad():
            t_logits = goal_f @ self.lm.t()  # [B,n,Vd]
            p = torch.softmax(t_logits, -1)
            top_idx = t_logits.topk(a.topk, -1).indices if topk_term else None
            nxt = torch.full((B, n), -1, dtype=torch.long)
            nxt[:, :-1] = self.to_d[x[:, 2:]]  # x_{t+2} in draft-vocabulary ids (-1: outside, or unknown at t = n-1)
        h_in = f[:, :n]
        if noise > 0:
            h_in = h_in + (torch.rand_like(h_in) - 0.5) * 2 * noise
        keys, vals, hits = [], [], []
        total = 0.0
        stats = []
        t_idx = torch.arange(n)[None].expand(B, n)
        for m in range(1, forwards + 1):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not a.no_bf16):
                u = head.fuse(ids, h_in)
                q, k, v = head.qkv(u, pos)
                keys.append(k)
                vals.append(v)
                attn = head.attend(q, torch.cat(keys, 2), torch.cat(vals, 2), self.bias(n, m))
                predict, regress = head.tail(u, attn)
                logits = head.small_logits(predict)
            logits, regress = logits.float(), regress.float()
            logq = torch.log_softmax(logits, -1)
            mask = t_idx >= m - 1
            align = align or a.align
            if align != "none" and m > 1:
                off = 1 if align == "coded" else 0
                for kk in range(1, m):
                    mask = mask & shifted(hits[kk - 1], m - 1 - kk + (1 - off), False)
            vl = F.smooth_l1_loss(regress, goal_f, reduction="none").mean(-1)
            pl = -(p * logq).sum(-1)
            parts = a.w_reg * vl + a.w_ce * pl
            tk = None
            if topk_term:
                tk = -(p.gather(-1, top_idx) * logq.gather(-1, top_idx)).sum(-1)
                parts = parts + a.w_topk * tk
            cnt = mask.sum().clamp(min=1)
            loss_m = (parts * mask).sum() / cnt
            total = total + loss_m
            with torch.no_grad():
                top = logits.topk(a.align_topk, -1).indices
                hit = (top == nxt[..., None]).any(-1) & (nxt >= 0)
                hits.append(hit)
                agree = (logits.argmax(-1) == t_logits.argmax(-1)).float()
                st = {"loss": float(loss_m), "reg": float((vl * mask).sum() / cnt), "ce": float((pl * mask).sum() / cnt),
                      "top1": float((agree * mask).sum() / cnt), "kept": float(mask.float().mean())}
                if tk is not None:
                    st["topk"] = float((tk * mask).sum() / cnt)
                stats.append(st)
            h_in = torch.cat([f[:, :1], regress[:, :-1].detach()], 1)  # row t <- regress of row t-1 (~ f_t)
        return total, stats


def windows(tokens, L, B, rng):
    starts = rng.integers(0, len(tokens) - L, size=B)
    return np.stack([tokens[s:s + L] for s in starts]).astype(np.int64)


class FeaturePool:
    """Windows (int32 ids) and the target's features (float16) from stage 1, reused by the later stages; at most
    `cap` windows (a uniform sample of all seen: reservoir sampling)."""

    def __init__(self, cap, seed):
        self.x, self.f = [], []
        self.cap, self.seen = cap, 0
        self.rng = np.random.default_rng(seed)

    def add(self, x, f):
        """x [B,L], f [B,L,H]: B windows"""
        for i in range(len(x)):
            self.seen += 1
            if len(self.x) < self.cap:
                self.x.append(x[i].astype(np.int32))
                self.f.append(f[i].astype(np.float16))
            else:
                j = int(self.rng.integers(0, self.seen))
                if j < self.cap:
                    self.x[j], self.f[j] = x[i].astype(np.int32), f[i].astype(np.float16)

    def sample(self, B, rng):
        i = rng.integers(0, len(self.x), size=B)
        return np.stack([self.x[j] for j in i]).astype(np.int64), np.stack([self.f[j] for j in i]).astype(np.float32)

    def tokens_seen(self, L):
        return self.seen * L


def target_features(target, x, torch, bf16=True):
    """Post-norm last hidden state [B,L,H] float32 (bf16 autocast: mean abs error ~0.003 on |f| ~0.9, well under
    the U(+-0.1) input noise; the evaluation uses the float32 ONNX target)."""
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return target.model(input_ids=x).last_hidden_state.float()


def run_stage(a, j, trainer, data, minutes, lr_peak, log, torch, fixed_steps=0):
    """Stage j (j chained forwards). data() -> (x [B,L] long, f [B,L,H] float32). Wall-time cosine like train-pair,
    or a step-based one over fixed_steps."""
    head = trainer.head
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr_peak, betas=(0.9, 0.95), weight_decay=0.01)
    noise = a.noise if str(j) in a.noise_stages.split(",") else 0.0
    budget = minutes * 60.0
    t0 = time.time()
    step, ema, t_warm = 0, None, None
    max_threads = torch.get_num_threads()
    probe, thread_use, t_probe = {}, {}, 0.0
    stage_stats = []
    head.train()
    while True:
        el = time.time() - t0
        if (fixed_steps and step >= fixed_steps) or (not fixed_steps and el >= budget):
            break
        if step < a.warmup:
            lr = lr_peak * (step + 1) / a.warmup
        elif fixed_steps:
            frac = (step - a.warmup) / max(1, fixed_steps - a.warmup)
            lr = lr_peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        else:
            if t_warm is None:
                t_warm = el
            frac = min(1.0, (el - t_warm) / max(1.0, budget - t_warm))
            lr = lr_peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if max_threads > 1:
            # shared machine: every 60 steps time 3 steps on 1 thread and 3 on all, keep the faster (as train-pair)
            ph = step % 60
            if ph in (0, 3):
                torch.set_num_threads(1 if ph == 0 else max_threads)
                t_probe = time.time()
            elif ph in (2, 5):
                probe[ph] = time.time() - t_probe
                if ph == 5:
                    best = 1 if probe[2] < probe[5] else max_threads
                    torch.set_num_threads(best)
                    thread_use[best] = thread_use.get(best, 0) + 1
        x, f = data()
        loss, stats = trainer.losses(x, f, j, noise, topk_term=j >= 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_value_(params, a.clip)
        opt.step()
        v = loss.item()
        ema = v if ema is None else 0.95 * ema + 0.05 * v
        stage_stats.append(stats)
        step += 1
        if step % 20 == 0 or step == 1:
            el = time.time() - t0
            per = " | ".join(f"f{m + 1} reg {s['reg']:.4f} ce {s['ce']:.3f} top1 {s['top1']:.3f} kept {s['kept']:.2f}"
                             for m, s in enumerate(stats))
            log(f"[stage {j}] step {step} loss {v:.4f} ema {ema:.4f} | {per} | lr {lr:.2e} "
                f"{step * x.numel() / el:.0f} tok/s {el / 60:.1f}/{minutes:.0f} min{f' step budget {fixed_steps}' if fixed_steps else ''} "
                f"threads {torch.get_num_threads()}")
    torch.set_num_threads(max_threads)
    last = stage_stats[-50:]
    mean_last = [{k: float(np.mean([s[m][k] for s in last])) for k in last[0][m]} for m in range(j)] if last else []
    return dict(stage=j, forwards=j, steps=step, seconds=round(time.time() - t0, 1), lr_peak=lr_peak, noise=noise,
                loss_ema=ema, train_last50=mean_last, threads_windows={str(k): n for k, n in thread_use.items()})


def heldout_check(trainer, x, f, forwards, torch):
    """Per-forward losses and top-1 agreement with the target's argmax on fixed held-out windows (no noise, every
    position: forward m's figures are those of depth-m drafts whose shallower tokens were the data's)."""
    trainer.head.eval()
    with torch.no_grad():
        _, stats = trainer.losses(x, f, forwards, 0.0, topk_term=True, align="none")
    trainer.head.train()
    return stats


# ---------------------------------------------------------------------------------------------- evaluation


class OnnxTarget:
    """The exported target (model.onnx, attention_mask graph): greedy continuation and last_hidden_state."""

    def __init__(self, target_dir, threads):
        from .pair_runner import OrtRunner

        self.r = OrtRunner(target_dir, threads)
        self.out = ["logits", "last_hidden_state"]

    def features(self, ids):
        lg, hs = self.r.sess.run(self.out, self.r.feeds(list(ids), None))
        return lg[0], hs[0]


def eval_data(a, work, log, corpus, tok, sep):
    """Held-out prompts (eval_pair's picker over the corpus' held-out documents), the target's greedy
    continuations and its features, cached in WORK."""
    from . import eval_pair

    gmax = max(eval_pair.parse_gammas(a.gammas))
    tag = "" if corpus.fingerprint == "stdlib" else f"_{corpus.fingerprint}"
    path = os.path.join(work, f"eval_{a.eval_prompts}x{a.eval_prompt_len}+{a.eval_gen}_g{gmax}{tag}.npz")
    if os.path.exists(path):
        z = np.load(path, allow_pickle=True)
        return [dict(rel=str(r), prompt=p, cont=c, feats=h) for r, p, c, h in zip(z["rel"], z["prompt"], z["cont"], z["feats"])]
    prompts = gc.pick_prompts(tok, corpus.held, sep, a.eval_prompts, a.eval_prompt_len, a.eval_gen + gmax + 1)
    if not prompts:
        raise SystemExit(f"train-griffin: no held-out --corpus document has --eval-prompt-len {a.eval_prompt_len} + "
                         f"--eval-gen {a.eval_gen} + {gmax + 1} tokens; lower them or add text")
    tgt = OnnxTarget(a.target, 1)
    out = []
    t0 = time.time()
    for rel, start, prompt in prompts:
        cont = eval_pair.greedy(tgt.r, prompt, a.eval_gen + gmax)
        _, feats = tgt.features(list(prompt) + list(cont))
        out.append(dict(rel=rel, prompt=np.array(prompt), cont=np.array(cont), feats=feats.astype(np.float32)))
    log(f"eval data: {len(out)} held-out prompts x {a.eval_prompt_len} tokens, greedy continuations of "
        f"{a.eval_gen + gmax} tokens by the ONNX target ({time.time() - t0:.0f}s)")
    np.savez(path, rel=np.array([o["rel"] for o in out]), prompt=np.stack([o["prompt"] for o in out]),
             cont=np.stack([o["cont"] for o in out]), feats=np.stack([o["feats"] for o in out]))
    return out


def head_prefix_lengths(sess, cfg, item, gen, gmax):
    """L_i for i in [0, gen): how many of the head's greedy chain tokens drafted after prompt + cont[:i] match cont[i:].
    Committed rows carry real target features (one causal call over all of them, whose rows depend only on earlier
    rows); drafted nodes carry their parent's regress, one call per depth over the committed rows' KV."""
    prompt, cont, feats = item["prompt"], item["cont"], item["feats"]
    P = len(prompt)
    seq = np.concatenate([prompt, cont])
    n = P + gen + gmax - 1  # rows t = 0..n-1 carry (x_{t+1}, f_t)
    bias = np.where(np.triu(np.ones((n, n), bool), 1), gm.MASKED, 0.0).astype(np.float32)[None, None]
    nkv, d = cfg["num_key_value_heads"], cfg["head_dim"]
    empty = np.zeros((1, nkv, 0, d), np.float32)
    logits, regress, pk, pv = sess.run(None, gm.head_feeds(seq[1:n + 1], feats[None, :n], np.arange(n), bias, empty, empty))
    L = []
    for i in range(gen):
        r = P + i - 2  # the last committed row with a real feature: it predicts x_{P+i} = cont[i]
        tok = int(logits[0, r].argmax())
        h = regress[0, r]
        k = 0
        past_k, past_v = pk[:, :, :r + 1], pv[:, :, :r + 1]
        pos = r + 1
        while tok == cont[i + k]:
            k += 1
            if k >= gmax:
                break
            b = np.zeros((1, 1, 1, past_k.shape[2] + 1), np.float32)
            lg, rg, past_k, past_v = sess.run(None, gm.head_feeds([tok], h[None, None], [pos], b, past_k, past_v))
            tok, h, pos = int(lg[0, -1].argmax()), rg[0, -1], pos + 1
        L.append(k)
    return L


def summarise_lengths(all_L, gammas, gen):
    from . import eval_pair

    flat = np.array([x for L in all_L for x in L])
    acc = {}
    for k in (1, 2, 3):
        den = (flat >= k - 1).sum()
        acc[str(k)] = float((flat >= k).sum() / max(1, den))
    tau = {}
    for g in gammas:
        counts = [c for L in all_L for c in eval_pair.simulate(L, g, gen)]
        tau[str(g)] = float(np.mean(counts))
    return dict(step_accuracy=acc, mean_accepted=tau, positions=int(len(flat)))


def evaluate(a, work, heads, log, data):
    """heads: {name: exported dir}; data: eval_data(). Returns {name: summary} (+ 'draft' with --draft)."""
    from . import eval_pair
    from .pair_runner import open_runner

    gammas = eval_pair.parse_gammas(a.gammas)
    gmax = max(gammas)
    res = {}
    for name, d in heads.items():
        with open(os.path.join(d, "config.json")) as fh:
            cfg = json.load(fh)
        sess = gm.ort_session(os.path.join(d, "model.onnx"), 1)
        t0 = time.time()
        all_L = [head_prefix_lengths(sess, cfg, it, a.eval_gen, gmax) for it in data]
        res[name] = summarise_lengths(all_L, gammas, a.eval_gen)
        res[name]["seconds"] = round(time.time() - t0, 1)
        log(f"eval {name} ({d}): step accuracy {res[name]['step_accuracy']}, mean accepted "
            f"{ {g: round(v, 3) for g, v in res[name]['mean_accepted'].items()} } ({res[name]['seconds']}s)")
    if a.draft:
        draft = open_runner(a.draft, 1)
        t0 = time.time()
        all_L = [eval_pair.draft_prefix_lengths(draft, list(it["prompt"]), list(it["cont"]), a.eval_gen, gmax) for it in data]
        res["draft"] = summarise_lengths(all_L, gammas, a.eval_gen)
        res["draft"]["seconds"] = round(time.time() - t0, 1)
        log(f"eval draft ({a.draft}): step accuracy {res['draft']['step_accuracy']}, mean accepted "
            f"{ {g: round(v, 3) for g, v in res['draft']['mean_accepted'].items()} }")
    return res


def format_eval(res, gammas):
    out = ["| drafter | step-1 acc | step-2 acc | step-3 acc | " + " | ".join(f"τ γ={g}" for g in gammas) + " |",
           "|---|---|---|---|" + "---|" * len(gammas)]
    for name, r in res.items():
        acc = r["step_accuracy"]
        out.append(f"| {name} | {acc['1']:.3f} | {acc['2']:.3f} | {acc['3']:.3f} | "
                   + " | ".join(f"{r['mean_accepted'][str(g)]:.3f}" for g in gammas) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- main


def run_eval_only(a, work, log, data, gammas):
    """--eval-only: evaluate --out (and --eval-also, and --draft) on the same prompts; each head's griffin.json
    gets its figures (next to the draft's, with --draft)."""
    heads = {"griffin": a.out}
    for d in filter(None, a.eval_also.split(",")):
        name = os.path.basename(d.rstrip("/"))
        # a head directory named like another (the shipped one is called griffin) keeps its whole path as its name
        heads[name if name not in heads else d] = d
    res = evaluate(a, work, heads, log, data)
    log("\n" + format_eval(res, gammas))
    with open(os.path.join(work, "eval_only.json"), "w") as fh:
        json.dump(res, fh, indent=2)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, d in heads.items():
        path = os.path.join(d, "griffin.json")
        info = json.load(open(path)) if os.path.exists(path) else {}
        results = {name: res[name]}
        if "draft" in res:
            results["draft"] = res["draft"]
        info["eval_only"] = {"prompts": a.eval_prompts, "prompt_len": a.eval_prompt_len, "gen": a.eval_gen,
                             "results": results, "created": when}
        with open(path, "w") as fh:
            json.dump(info, fh, indent=2)
            fh.write("\n")
    return 0


def self_distilled_tokens(a, target, train_tokens, sep, torch, log):
    """--self-distill N: the target's own text as the training stream, separator-joined. Each sequence is a random
    --self-distill-prompt-token window of the training split and --self-distill-tokens the target writes after it
    (batches of 64, greedy and sampled batches in turn, end of text never stops it). The head then learns the target
    on what it is asked to draft: the target's continuations, where the corpus is other authors' text."""
    n, plen, gen, batch = a.self_distill, a.self_distill_prompt, a.self_distill_tokens, 64
    if len(train_tokens) <= plen:
        raise SystemExit(f"train-griffin: --self-distill-prompt {plen} is longer than the training split "
                         f"({len(train_tokens)} tokens)")
    rng = np.random.default_rng(a.seed + 2)
    rows, t0 = [], time.time()
    for b in range(0, n, batch):
        k = min(batch, n - b)
        starts = rng.integers(0, len(train_tokens) - plen, k)
        x = torch.from_numpy(np.stack([train_tokens[s:s + plen] for s in starts]).astype(np.int64))
        sample = (b // batch) % 2 == 1
        with torch.no_grad():
            out = target.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=gen, min_new_tokens=gen,
                                  do_sample=sample, temperature=a.self_distill_temperature if sample else None,
                                  top_k=None, top_p=None, pad_token_id=sep, eos_token_id=None)
        for row in out.numpy():
            rows.append(row)
            rows.append(np.array([sep]))
        log(f"self-distill: {b + k}/{n} sequences ({'sampled' if sample else 'greedy'} batch), "
            f"{time.time() - t0:.0f}s")
    tokens = np.concatenate(rows).astype(train_tokens.dtype)
    log(f"self-distill: {len(tokens)} training tokens, {n} sequences of {plen} + {gen} ({time.time() - t0:.0f}s)")
    return tokens


def pool_capacity(a, hidden, log):
    """--pool-windows, lowered so the float16 features fit --pool-mb ([L,H] float16 a window)."""
    per = a.seq_len * hidden * 2 / 1e6
    cap = min(a.pool_windows, max(1, int(a.pool_mb / per)))
    if cap < a.pool_windows:
        log(f"feature pool: {cap} windows ({per:.2f} MB each) to stay within --pool-mb {a.pool_mb:.0f}, not "
            f"--pool-windows {a.pool_windows}")
    return cap


def main(argv):
    a = parse(argv)
    import torch
    from tokenizers import Tokenizer

    from . import eval_pair

    torch.set_num_threads(a.threads)
    work = a.work or os.path.dirname(os.path.abspath(a.out))
    os.makedirs(work, exist_ok=True)
    log = Log(os.path.join(work, "train_griffin_log.txt"))
    log(f"train-griffin {' '.join(argv)} | torch {torch.__version__}")
    t_start = time.time()
    gammas = eval_pair.parse_gammas(a.gammas)
    tcfg = load_target_config(a.target)
    tok = Tokenizer.from_file(os.path.join(a.target, "tokenizer.json"))
    corpus, train_tokens, held_tokens, sep = load_corpus_tokens(a, tok, tcfg, log)
    if a.eval_only:
        return run_eval_only(a, work, log, eval_data(a, work, log, corpus, tok, sep), gammas)

    a.target_hf = resolve_target_hf(a, work, log)
    embed, lm_head = load_target_tables(a.target_hf, torch)
    from transformers import AutoModelForCausalLM

    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    target = AutoModelForCausalLM.from_pretrained(a.target_hf, dtype=torch.float32).eval()
    for p_ in target.parameters():
        p_.requires_grad_(False)
    if a.self_distill and not a.random_only:
        train_tokens = self_distilled_tokens(a, target, train_tokens, sep, torch, log)
    draft_ids = draft_vocabulary(train_tokens, a.draft_vocab, tcfg["vocab_size"])
    if a.random_only:
        return run_gate(a, log, tcfg, embed, draft_ids, train_tokens, held_tokens, torch, lm_head)
    head = make_head(a, tcfg, embed, draft_ids, lm_head)
    if a.init:
        head.load_state_dict(torch.load(a.init))
        log(f"head: loaded {a.init}")
    n_params = gm.trainable_params(head)
    log(f"head: {n_params} trainable parameters, config {json.dumps({k: head.cfg[k] for k in ('hidden_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'intermediate_size', 'emlp_size', 'draft_vocab_size', 'token_guided_fusion', 'token_tables')})}")
    trainer = Trainer(a, head, torch)
    minutes = [float(m) for m in a.minutes.split(",")]
    steps = [int(x) for x in a.steps.split(",")] if a.steps else []
    if steps:
        minutes = minutes[:len(steps)] + [0.0] * (len(steps) - len(minutes))
    lrs = [float(x) for x in a.lr.split(",")]
    lrs += [lrs[-1]] * (len(minutes) - len(lrs))
    pool = FeaturePool(pool_capacity(a, head.cfg["hidden_size"], log), a.seed + 1)
    B, L = a.batch, a.seq_len

    hx = torch.from_numpy(windows(held_tokens, L, 16, np.random.default_rng(7)))
    hf = target_features(target, hx, torch, bf16=False)

    def fresh():
        x = torch.from_numpy(windows(train_tokens, L, B, rng))
        f = target_features(target, x, torch, bf16=not a.no_bf16)
        pool.add(x.numpy(), f.numpy())
        return x, f

    def pooled():
        x, f = pool.sample(B, rng)
        return torch.from_numpy(x), torch.from_numpy(f)

    stages, checks = [], []
    for idx, mins in enumerate(minutes):
        j = a.first_stage + idx
        data = fresh if (j == 1 or len(pool.x) < 4 * B) else pooled
        res = run_stage(a, j, trainer, data, mins, lrs[min(idx, len(lrs) - 1)], log, torch,
                        fixed_steps=steps[idx] if steps else 0)
        res["data"] = "target features on the fly (pooled)" if data is fresh else f"pool of {len(pool.x)} windows"
        res["heldout"] = heldout_check(trainer, hx, hf, max(3, j), torch)
        stages.append(res)
        torch.save(gm.head_state_dict(head), os.path.join(work, f"ckpt_stage{j}.pt"))
        log(f"stage {j} done: {res['steps']} steps in {res['seconds'] / 60:.1f} min; held-out per forward: "
            + " | ".join(f"f{m + 1} reg {s['reg']:.4f} ce {s['ce']:.3f} top1 {s['top1']:.3f}" for m, s in enumerate(res["heldout"])))
        if j == 1 and a.stage1_out:
            info = dict(what="GRIFFIN head after stage 1 only (one forward, no token-alignable mask): ablation",
                        seed=a.seed, trainable_parameters=n_params, stages=stages)
            checks.append(export_checked(head, a.stage1_out, a.target, info, log))
    pool_tokens = pool.tokens_seen(L)
    pool_kept = len(pool.x)
    pool = None

    chk = export_checked(head, a.out, a.target, {}, log)
    checks.append(chk)
    head_dirs = {"griffin": a.out}
    if a.stage1_out:
        head_dirs["griffin-stage1"] = a.stage1_out
    for d in filter(None, a.eval_also.split(",")):
        head_dirs[os.path.basename(d.rstrip("/"))] = d
    # float16 storage check: the same weights exported float32
    fp32_dir = os.path.join(work, os.path.basename(a.out.rstrip("/")) + "-fp32")
    gm.write_dir(head, fp32_dir, a.target, fp16_weights=False)
    head_dirs["griffin-fp32-weights"] = fp32_dir
    ev = evaluate(a, work, head_dirs, log, eval_data(a, work, log, corpus, tok, sep))
    timing = timing_table(os.path.join(a.out, "model.onnx"), head.cfg, Baseline(a), a.timing_runs, lengths=(1, 4),
                          threads=(1,))
    g4 = ev["griffin"]["mean_accepted"].get("4")
    d4 = ev["draft"]["mean_accepted"].get("4") if "draft" in ev else None
    info = {
        "what": "GRIFFIN draft head (arXiv 2502.11018), token-alignable staged training",
        "target": os.path.abspath(a.target),
        "interface": "row t: input_ids = x_{t+1}, hidden_states = f_t (target last_hidden_state, or the parent's "
                     "regress for drafted nodes), position_ids = t; outputs logits for x_{t+2} (full width, tokens "
                     "outside the draft vocabulary at -1e9), regress ~ f_{t+1}; present.0.* keys after rotary",
        "architecture": {k: head.cfg[k] for k in ("hidden_size", "intermediate_size", "emlp_size", "draft_vocab_size",
                                                  "num_attention_heads", "num_key_value_heads", "head_dim",
                                                  "token_guided_fusion", "token_tables", "rope_parameters")},
        "trainable_parameters": n_params,
        "draft_vocab_ids": None if draft_ids is None else draft_ids.tolist(),
        "seed": a.seed,
        "settings": {k: getattr(a, k) for k in ("minutes", "steps", "seq_len", "batch", "lr", "warmup", "clip", "noise",
                                                "noise_stages", "w_reg", "w_ce", "w_topk", "topk", "align",
                                                "align_topk", "threads", "first_stage", "init", "self_distill",
                                                "self_distill_prompt", "self_distill_tokens",
                                                "self_distill_temperature")},
        "corpus": {"what": corpus.what, "train_documents": len(corpus.train), "train_tokens": int(len(train_tokens)),
                   "heldout_documents": len(corpus.held), "heldout_tokens": int(len(held_tokens)),
                   "stage1_window_tokens": int(pool_tokens), "pool_windows_for_later_stages": pool_kept},
        "stages": stages,
        "onnx_check": chk,
        "eval": {"prompts": a.eval_prompts, "prompt_len": a.eval_prompt_len, "gen": a.eval_gen,
                 "how": "held-out prompts (eval-pair's picker); greedy continuations and features from the ONNX "
                        "target; heads run as their exported ONNX graphs" + (f"; draft = {a.draft}" if a.draft else ""),
                 "results": ev},
        "gamma4_ratio_vs_draft": (g4 / d4) if g4 and d4 else None,
        "goal_gamma4_ratio": 1.15,
        "timing_ms": timing,
        "wall_seconds": round(time.time() - t_start, 1),
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with open(os.path.join(a.out, "griffin.json"), "w") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    log("\n" + format_eval(ev, gammas) + "\n\n" + format_timing(timing))
    if g4 and d4:
        log(f"gamma=4: griffin {g4:.3f} vs draft {d4:.3f} = {g4 / d4:.3f}x (goal 1.15x: {'met' if g4 / d4 >= 1.15 else 'NOT met'})")
    log(f"train-griffin done in {(time.time() - t_start) / 60:.1f} min -> {a.out}")
    if not all(c["ok"] for c in checks):
        print("train-griffin: an ONNX export differs from torch by more than 1e-3", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
