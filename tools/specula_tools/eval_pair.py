"""eval-pair: held-out quality of a draft/target pair and simulated greedy speculative acceptance.

    python -m specula_tools eval-pair --target DIR --draft DIR [--heldout-files FILE] [--gammas 1..8]
                                      [--prompts 48 --prompt-len 256 --gen 128] [--json OUT.json] [--md OUT.md]

DIR is a HF checkpoint directory or an exported ONNX directory (model.onnx, run with onnxruntime);
the tokenizer is read from the target directory (tokenizer.json).

* Loss: the target's (and draft's) mean next-token cross-entropy in nats on the held-out files (each file
  preceded by <|endoftext|>, concatenated, cut into non-overlapping windows of --loss-seq tokens).
* Acceptance: --prompts contexts of --prompt-len tokens cut from held-out files (one per file, at an offset
  fixed by a hash of the path). The target continues each greedily for --gen tokens. At every position i the
  draft proposes up to max(gamma) greedy tokens from the same context (prompt + target tokens before i);
  L_i = length of the common prefix with the target's greedy tokens. Greedy speculative decoding is then
  simulated exactly per gamma: p = 0; while p < gen: k = min(L_p, gamma); p += k + 1 (one verification,
  k accepted + 1 bonus token). Reported: mean tokens per verification (1.0 = nothing accepted).
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

from . import pair_data
from .pair_runner import open_runner


def parse_gammas(s):
    if ".." in s:
        a, b = s.split("..")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in s.split(",")]


def parse(argv):
    p = argparse.ArgumentParser(prog="eval-pair", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True)
    p.add_argument("--draft", required=True)
    p.add_argument("--heldout-files", help="file list written by train-pair (default: recompute the split)")
    p.add_argument("--gammas", default="1..8")
    p.add_argument("--prompts", type=int, default=48)
    p.add_argument("--prompt-len", type=int, default=256)
    p.add_argument("--gen", type=int, default=128)
    p.add_argument("--loss-seq", type=int, default=512)
    p.add_argument("--loss-tokens", type=int, default=131072, help="cap on held-out tokens scored (0 = all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the results as JSON here")
    p.add_argument("--md", help="write the markdown table here")
    return p.parse_args(argv)


def mean_loss(runner, stream, seq, cap):
    n = len(stream) if not cap else min(len(stream), cap)
    tot, cnt = 0.0, 0
    for i in range(n // seq):
        x = stream[i * seq:(i + 1) * seq].astype(np.int64)
        logits, _ = runner.forward(x, None)
        m = logits[:-1].max(-1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(logits[:-1] - m).sum(-1)))
        tot += float((lse - logits[np.arange(seq - 1), x[1:]]).sum())
        cnt += seq - 1
    return tot / max(1, cnt), cnt


def greedy(runner, prompt, n):
    logits, past = runner.forward(prompt, None)
    out = []
    nxt = int(logits[-1].argmax())
    for _ in range(n):
        out.append(nxt)
        logits, past = runner.forward([nxt], past)
        nxt = int(logits[-1].argmax())
    return out


def draft_prefix_lengths(runner, prompt, cont, gen, gmax):
    """L_i for i in [0, gen): draft greedy tokens from prompt + cont[:i] matching cont[i:]."""
    P = len(prompt)
    seq = list(prompt) + list(cont[:gen])
    logits, past = runner.forward(seq, None)
    L = []
    for i in range(gen):
        k = 0
        tok = int(logits[P + i - 1].argmax())
        cur = runner.crop(past, P + i)
        while tok == cont[i + k]:
            k += 1
            if k >= gmax:
                break
            lg, cur = runner.forward([tok], cur)
            tok = int(lg[-1].argmax())
        L.append(k)
    return L


def simulate(L, gamma, gen):
    p, counts = 0, []
    while p < gen:
        k = min(L[p], gamma)
        counts.append(k + 1)
        p += k + 1
    return counts


def pick_prompts(tok, root, rels, n, plen, need):
    eot = tok.token_to_id(pair_data.EOT)
    cands = []
    for rel in rels:
        text = pair_data.read_text(root, rel)
        if not text:
            continue
        ids = [eot] + tok.encode(text, add_special_tokens=False).ids
        if len(ids) >= plen + need:
            cands.append((rel, ids))
    prompts = []
    rnd = 0
    while len(prompts) < n and cands and rnd < 8:
        for rel, ids in cands:
            if len(prompts) >= n:
                break
            h = int(hashlib.sha1(f"{rel}#{rnd}".encode()).hexdigest()[:8], 16)
            start = h % (len(ids) - plen - need + 1)
            prompts.append((rel, start, ids[start:start + plen]))
        rnd += 1
    return prompts


def main(argv):
    a = parse(argv)
    from tokenizers import Tokenizer

    t0 = time.time()
    gammas = parse_gammas(a.gammas)
    gmax = max(gammas)
    tok = Tokenizer.from_file(os.path.join(a.target, "tokenizer.json"))
    if a.heldout_files:
        root, rels = pair_data.read_file_list(a.heldout_files)
    else:
        root, _, rels = pair_data.split_corpus()
    target = open_runner(a.target, a.threads)
    draft = open_runner(a.draft, a.threads)

    texts = [t for t in (pair_data.read_text(root, r) for r in rels) if t]
    stream = pair_data.encode_stream(tok, texts)
    t_loss, n_scored = mean_loss(target, stream, a.loss_seq, a.loss_tokens)
    d_loss, _ = mean_loss(draft, stream, a.loss_seq, a.loss_tokens)
    print(f"held-out: {len(rels)} files, {len(stream)} tokens; scored {n_scored}: target loss {t_loss:.4f} nats/token "
          f"(ppl {np.exp(t_loss):.2f}), draft loss {d_loss:.4f}  [{time.time() - t0:.0f}s]", flush=True)

    prompts = pick_prompts(tok, root, rels, a.prompts, a.prompt_len, a.gen + gmax + 1)
    all_L, counts = [], {g: [] for g in gammas}
    for j, (rel, start, prompt) in enumerate(prompts):
        cont = greedy(target, prompt, a.gen + gmax)
        L = draft_prefix_lengths(draft, prompt, cont, a.gen, gmax)
        all_L.append(L)
        for g in gammas:
            counts[g].extend(simulate(L, g, a.gen))
        if (j + 1) % 8 == 0 or j == len(prompts) - 1:
            g4 = 4 if 4 in gammas else gammas[-1]
            print(f"  {j + 1}/{len(prompts)} prompts: running mean accepted at gamma={g4}: "
                  f"{np.mean(counts[g4]):.3f}  [{time.time() - t0:.0f}s]", flush=True)
    flat = np.array([x for L in all_L for x in L])
    top1 = float((flat >= 1).mean())
    per_prompt4 = [np.mean(simulate(L, 4, a.gen)) for L in all_L] if 4 in gammas else []
    res = dict(target=a.target, draft=a.draft, heldout_files=len(rels), heldout_tokens=int(len(stream)),
               loss_tokens_scored=int(n_scored), target_loss_nats=t_loss, draft_loss_nats=d_loss,
               prompts=len(prompts), prompt_len=a.prompt_len, gen=a.gen,
               greedy_top1_agreement=top1,
               mean_accepted={str(g): float(np.mean(counts[g])) for g in gammas},
               verifications={str(g): len(counts[g]) for g in gammas},
               min_prompt_mean_accepted_gamma4=float(min(per_prompt4)) if per_prompt4 else None,
               seconds=time.time() - t0)
    md = ["| gamma | " + " | ".join(str(g) for g in gammas) + " |",
          "|---|" + "---|" * len(gammas),
          "| mean accepted tokens / verification | " + " | ".join(f"{np.mean(counts[g]):.2f}" for g in gammas) + " |"]
    md = "\n".join(md)
    print()
    print(f"target loss {t_loss:.4f} nats/token, draft loss {d_loss:.4f}; draft/target greedy top-1 agreement "
          f"{top1:.3f} over {len(flat)} positions of {len(prompts)} prompts")
    print(md)
    print(json.dumps(res, indent=2))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=2)
    if a.md:
        with open(a.md, "w") as fh:
            fh.write(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
