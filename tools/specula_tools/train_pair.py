"""train-pair: build the embedded draft/target pair from the Python standard library sources.

    python -m specula_tools train-pair --out WORK_DIR [--minutes-target 40 --minutes-draft 22 --seed 1234]

Steps: split the corpus (held-out list -> WORK_DIR/heldout_files.txt), train a byte-level BPE tokenizer
(4096 tokens, <|endoftext|> = bos/eos/pad), pre-train the Llama target (causal LM cross-entropy, AdamW,
warmup + cosine), then distil the Llama draft from it (KL(target || draft) over the full vocabulary on
teacher logits computed on the fly, plus a small cross-entropy term). Both end up as HF directories
WORK_DIR/target-hf and WORK_DIR/draft-hf (weights, tokenizer, chat template, generation config).

Each phase has a wall-time budget: without a fixed step count the (warmup +) cosine schedule runs over
wall time and the phase stops when its minutes are spent, so other load on the machine costs tokens, not
time. --target-steps/--draft-steps fix the step count instead (step-based cosine; reproducible).
--skip-target reuses WORK_DIR/target-hf; --resume-draft continues from WORK_DIR/draft-hf (distil longer).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

from . import pair_data, pair_models


class Log:
    def __init__(self, path):
        self.fh = open(path, "a", encoding="utf-8")

    def __call__(self, msg):
        line = time.strftime("%H:%M:%S ", time.gmtime()) + msg
        print(line, flush=True)
        self.fh.write(line + "\n")
        self.fh.flush()


def parse(argv):
    p = argparse.ArgumentParser(prog="train-pair", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="work directory")
    p.add_argument("--minutes-target", type=float, default=40.0)
    p.add_argument("--minutes-draft", type=float, default=22.0)
    p.add_argument("--target-steps", type=int, default=0, help="fixed step count (overrides --minutes-target)")
    p.add_argument("--draft-steps", type=int, default=0, help="fixed step count (overrides --minutes-draft)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr-target", type=float, default=1.5e-3)
    p.add_argument("--lr-draft", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--ce-weight", type=float, default=0.05, help="weight of the draft's cross-entropy term")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-bf16", action="store_true", help="disable bf16 autocast (fp32 weights are kept either way)")
    p.add_argument("--skip-target", action="store_true", help="reuse WORK_DIR/target-hf")
    p.add_argument("--resume-draft", action="store_true", help="start from WORK_DIR/draft-hf")
    return p.parse_args(argv)


def lr_at(step, total, peak, warmup, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


def batches(tokens, seq_len, batch, seed):
    import torch

    rng = np.random.default_rng(seed)
    n = len(tokens) - seq_len - 1
    while True:
        starts = rng.integers(0, n, size=batch)
        x = np.stack([tokens[s:s + seq_len] for s in starts]).astype(np.int64)
        yield torch.from_numpy(x)


def run_phase(name, log, params, loss_fn, data, minutes, fixed_steps, peak_lr, warmup, tokens_per_step,
              checkpoint=None):
    """Generic AdamW loop with a time-sized cosine schedule. loss_fn(x) -> (loss, extra dict)."""
    import torch

    opt = torch.optim.AdamW(params, lr=peak_lr, betas=(0.9, 0.95), weight_decay=0.1)
    budget = minutes * 60.0
    total = fixed_steps or None
    t0 = time.time()
    step, ema = 0, None
    max_threads = torch.get_num_threads()
    adapt_threads = max_threads > 1
    probe, thread_use, t_probe = {}, {}, 0.0
    # Without a fixed step count the cosine runs over wall time (robust to other load on the machine):
    # progress = elapsed / budget; the phase ends when the budget is spent.
    while True:
        el = time.time() - t0
        if total is not None:
            if step >= total:
                break
            lr = lr_at(step, total, peak_lr, warmup)
        else:
            if el >= budget:
                break
            if step < warmup:
                lr = peak_lr * (step + 1) / warmup
            else:
                if step == warmup:
                    t_warm = el
                frac = min(1.0, (el - t_warm) / max(1.0, budget - t_warm))
                lr = peak_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if adapt_threads:
            # The machine is shared: 2 intra-op threads lose badly to 1 when another process holds a core
            # (every op waits for the descheduled thread). Every 60 steps, time 3 steps with each count and
            # keep the faster for the rest of the window.
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
        x = next(data)
        loss, extra = loss_fn(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        v = loss.item()
        ema = v if ema is None else 0.95 * ema + 0.05 * v
        step += 1
        if step % 20 == 0 or step == 1 or step == total:
            el = time.time() - t0
            ex = " ".join(f"{k}={val:.4f}" for k, val in extra.items())
            log(f"[{name}] step {step}/{total or str(int(budget / 60)) + 'min'} loss {v:.4f} ema {ema:.4f} {ex} lr {lr:.2e} "
                f"gnorm {float(gn):.2f} {step * tokens_per_step / el:.0f} tok/s {el / 60:.1f} min "
                f"threads {torch.get_num_threads()}")
        if checkpoint and step % 300 == 0:
            checkpoint()
    torch.set_num_threads(max_threads)
    return dict(steps=step, seconds=time.time() - t0, final_loss_ema=ema, last_loss=v,
                thread_windows={str(k): n for k, n in thread_use.items()})


def heldout_loss(model, tokens, seq_len, max_tokens=65536, autocast=True):
    import torch

    model.eval()
    n = min(len(tokens), max_tokens) // seq_len
    tot, cnt = 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        for i in range(n):
            x = torch.from_numpy(tokens[i * seq_len:(i + 1) * seq_len].astype(np.int64))[None]
            logits = model(input_ids=x).logits.float()
            l = torch.nn.functional.cross_entropy(logits[0, :-1], x[0, 1:], reduction="sum")
            tot += l.item()
            cnt += seq_len - 1
    model.train()
    return tot / max(1, cnt)


def main(argv):
    args = parse(argv)
    import torch
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    log = Log(os.path.join(args.out, "train_log.txt"))
    t_start = time.time()
    log(f"train-pair {' '.join(argv)} | torch {torch.__version__} threads {args.threads}")
    autocast = not args.no_bf16

    root, train_files, held_files = pair_data.split_corpus()
    pair_data.write_file_list(os.path.join(args.out, "heldout_files.txt"), root, held_files)
    pair_data.write_file_list(os.path.join(args.out, "train_files.txt"), root, train_files)
    assert not set(train_files) & set(held_files)
    train_texts = [t for t in (pair_data.read_text(root, r) for r in train_files) if t]
    held_texts = [t for t in (pair_data.read_text(root, r) for r in held_files) if t]
    log(f"corpus {root}: {len(train_texts)} training files ({sum(map(len, train_texts)) / 1e6:.1f}M chars), "
        f"{len(held_texts)} held-out files ({sum(map(len, held_texts)) / 1e6:.2f}M chars)")

    target_dir = os.path.join(args.out, "target-hf")
    draft_dir = os.path.join(args.out, "draft-hf")
    tok_path = os.path.join(args.out, "tokenizer.json")
    if args.skip_target:
        tok = Tokenizer.from_file(os.path.join(target_dir, "tokenizer.json"))
    else:
        t = time.time()
        tok = pair_data.train_tokenizer(train_texts)
        tok.save(tok_path)
        log(f"tokenizer: vocab {tok.get_vocab_size()} trained in {time.time() - t:.0f}s")
    hf_tok = pair_models.hf_tokenizer(tok)
    eot = tok.token_to_id(pair_data.EOT)
    vocab = tok.get_vocab_size()

    t = time.time()
    train_tokens = pair_data.encode_stream(tok, train_texts)
    held_tokens = pair_data.encode_stream(tok, held_texts)
    log(f"tokens: train {len(train_tokens) / 1e6:.2f}M ({sum(map(len, train_texts)) / len(train_tokens):.2f} chars/token), "
        f"held-out {len(held_tokens) / 1e6:.3f}M, encoded in {time.time() - t:.0f}s")
    summary = dict(seed=args.seed, seq_len=args.seq_len, batch=args.batch, vocab=vocab,
                   train_tokens=int(len(train_tokens)), heldout_tokens=int(len(held_tokens)),
                   train_files=len(train_files), heldout_files=len(held_files))
    tps = args.seq_len * args.batch

    # ---- target -------------------------------------------------------------------------------
    if args.skip_target:
        target = LlamaForCausalLM.from_pretrained(target_dir, dtype=torch.float32)
        log(f"target: reusing {target_dir}")
    else:
        torch.manual_seed(args.seed)
        target = LlamaForCausalLM(pair_models.llama_config(pair_models.TARGET_SHAPE, vocab, eot))
        n = pair_models.param_count(target)
        log(f"target: {n / 1e6:.2f}M parameters {pair_models.TARGET_SHAPE}")
        target.train()

        def target_loss(x):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = target(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, vocab), x[:, 1:].reshape(-1))
            return loss, {}

        def ckpt():
            torch.save(target.state_dict(), os.path.join(args.out, "target-ckpt.pt"))

        params = [p for p in target.parameters() if p.requires_grad]
        res = run_phase("target", log, params, target_loss, batches(train_tokens, args.seq_len, args.batch, args.seed),
                        args.minutes_target, args.target_steps, args.lr_target, args.warmup, tps, checkpoint=ckpt)
        hl = heldout_loss(target, held_tokens, args.seq_len, autocast=autocast)
        res.update(params=n, heldout_loss=hl)
        log(f"target done: {res['steps']} steps in {res['seconds'] / 60:.1f} min, held-out loss {hl:.4f} nats/token")
        pair_models.save_hf(target, hf_tok, target_dir)
        summary["target"] = res
    target.eval()
    for p in target.parameters():
        p.requires_grad_(False)

    # ---- draft (distillation) ----------------------------------------------------------------
    if args.resume_draft:
        draft = LlamaForCausalLM.from_pretrained(draft_dir, dtype=torch.float32)
        log(f"draft: resuming from {draft_dir}")
    else:
        torch.manual_seed(args.seed + 1)
        draft = LlamaForCausalLM(pair_models.llama_config(pair_models.DRAFT_SHAPE, vocab, eot))
    nd = pair_models.param_count(draft)
    log(f"draft: {nd / 1e6:.3f}M parameters {pair_models.DRAFT_SHAPE}")
    draft.train()
    ce_w = args.ce_weight

    def draft_loss(x):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            t_logits = target(input_ids=x).logits
        t_logp = torch.log_softmax(t_logits.float(), dim=-1).reshape(-1, vocab)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            d_logits = draft(input_ids=x).logits
        d_logp = torch.log_softmax(d_logits.float(), dim=-1)
        kl = torch.nn.functional.kl_div(d_logp.reshape(-1, vocab), t_logp, log_target=True, reduction="batchmean")
        ce = torch.nn.functional.nll_loss(d_logp[:, :-1].reshape(-1, vocab), x[:, 1:].reshape(-1))
        with torch.no_grad():
            agree = (d_logp.argmax(-1) == t_logits.argmax(-1)).float().mean()
        return (1 - ce_w) * kl + ce_w * ce, {"kl": kl.item(), "ce": ce.item(), "top1": agree.item()}

    params = [p for p in draft.parameters() if p.requires_grad]
    res = run_phase("draft", log, params, draft_loss, batches(train_tokens, args.seq_len, args.batch, args.seed + 7),
                    args.minutes_draft, args.draft_steps, args.lr_draft, args.warmup, tps)
    hl = heldout_loss(draft, held_tokens, args.seq_len, autocast=autocast)
    res.update(params=nd, heldout_loss=hl)
    log(f"draft done: {res['steps']} steps in {res['seconds'] / 60:.1f} min, held-out CE {hl:.4f} nats/token")
    pair_models.save_hf(draft, hf_tok, draft_dir)
    key = "draft_resume" if args.resume_draft else "draft"
    summary[key] = res
    summary["wall_seconds"] = time.time() - t_start
    prev = {}
    sp = os.path.join(args.out, "train_summary.json")
    if os.path.exists(sp) and (args.skip_target or args.resume_draft):
        with open(sp) as fh:
            prev = json.load(fh)
        prev.setdefault("runs", []).append(summary)
        summary = prev
    with open(sp, "w") as fh:
        json.dump(summary, fh, indent=2)
    log(f"train-pair done in {(time.time() - t_start) / 60:.1f} min -> {target_dir}, {draft_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
