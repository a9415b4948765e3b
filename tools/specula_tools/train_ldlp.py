"""train-ldlp: AdaEAGLE's Lightweight Draft Length Predictor (LDLP, arXiv 2412.18910) for a draft/target pair.

    python -m specula_tools train-ldlp --target TARGET_HF --draft DRAFT_HF --files train_files.txt --out DIR
        [--samples 80000] [--gamma-max 10] [--epochs 12] [--seed 0] [--onnx-target DIR]

Before a speculative round, the LDLP predicts how many draft tokens the target will accept, from
  h    the target's last hidden state (after the final norm) at the position whose logits predicted the last
       committed token x_t, and
  e    the target's input embedding of x_t.

Data. Prompts are prefixes of the files in --files (cut at a random line start, 8..384 tokens; some start at
a file's beginning with <|endoftext|> as in training). The target (its weights rounded to float16 and back
like the shipped ONNX target, compute float32) continues each greedily for --gen + gamma_max tokens. At each
generated position t (context = prompt + the target's tokens before t) the label is the common-prefix length
(0..gamma_max) of the draft's gamma_max greedy tokens and the target's next gamma_max greedy tokens. While the
draft agrees, its context is the target's own path, so one teacher-forced draft pass over prompt + target
tokens gives every label: label_t = number of consecutive positions j >= t where the draft's argmax equals the
target's token (capped at gamma_max). Positions after a generated <|endoftext|> are dropped.

Model. concat(h, e) -> Linear(2H -> 256) -> 2 x [x + SiLU(Linear(x))] -> Linear(256 -> 1). Inputs are
standardised with the training statistics, folded into the first Linear at export. Loss: asymmetric L1,
under-prediction (pred < label) weighted --under-weight (2) and over-prediction --over-weight (1); its
minimiser is the conditional 2/3-quantile of the accepted length: a draft that is too long costs a few cheap
draft steps, one that is too short loses accepted tokens. Validation: 10 % of the PROMPTS (all positions of a
held-out prompt are validation samples; positions of one generation are strongly correlated).

Output (DIR): ldlp.onnx (opset 18, IR 10; inputs hidden_state float32 [1, H], token_id int64 [1]; output
length float32 [1], continuous, not clamped; the target's embedding table is inside, stored float16 and cast
to float32 after the Gather) and ldlp.json (metrics). The ONNX file is checked against torch with ONNX
Runtime on 100 validation samples (max abs diff <= 1e-3, else exit 1). With --onnx-target (default: DIR when
DIR/model.onnx exists) the features are also checked against the exported target's last_hidden_state.
"""
import argparse
import datetime
import json
import os
import sys
import time

import numpy as np

from . import pair_data

FP16_MIN_ELEMENTS = 1024  # onnx_fp16_weights' default: smaller initializers (the RMSNorm weights) stay float32


def parse(argv):
    p = argparse.ArgumentParser(prog="train-ldlp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", required=True, help="target HF checkpoint directory (tokenizer.json inside)")
    p.add_argument("--draft", required=True, help="draft HF checkpoint directory")
    p.add_argument("--files", required=True, help="training file list (train-pair's train_files.txt)")
    p.add_argument("--out", required=True, help="output directory for ldlp.onnx and ldlp.json")
    p.add_argument("--samples", type=int, default=80000, help="stop collecting after this many samples")
    p.add_argument("--minutes-data", type=float, default=15.0, help="wall-time cap on data collection")
    p.add_argument("--gamma-max", type=int, default=10)
    p.add_argument("--gen", type=int, default=64, help="greedy target tokens per prompt used as positions")
    p.add_argument("--batch", type=int, default=8, help="prompts generated together (same prompt length)")
    p.add_argument("--prompt-lens", default="8,16,32,64,128,256,384", help="prompt lengths in tokens, drawn uniformly")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--train-batch", type=int, default=256)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--under-weight", type=float, default=2.0, help="loss weight when pred < label")
    p.add_argument("--over-weight", type=float, default=1.0, help="loss weight when pred > label")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is faster on a busy 2-core machine)")
    p.add_argument("--no-fp16-round", action="store_true", help="use the float32 target weights as they are")
    p.add_argument("--onnx-target", help="exported target dir (model.onnx with last_hidden_state) for the feature check")
    p.add_argument("--cache", help="save/reuse the collected samples here (.npz)")
    return p.parse_args(argv)


def log(msg, t0=[time.time()]):
    print(f"[{time.time() - t0[0]:6.0f}s] {msg}", flush=True)


def load_models(a):
    import torch
    from transformers import AutoModelForCausalLM

    target = AutoModelForCausalLM.from_pretrained(a.target, dtype=torch.float32).eval()
    draft = AutoModelForCausalLM.from_pretrained(a.draft, dtype=torch.float32).eval()
    rounded = 0
    if not a.no_fp16_round:
        with torch.no_grad():
            for p in target.parameters():  # tied embeddings appear once
                if p.numel() >= FP16_MIN_ELEMENTS:
                    p.copy_(p.half().float())
                    rounded += 1
    return target, draft, rounded


# ---------------------------------------------------------------------------------------------- data


_STARTS = {}


def _line_starts(text):
    key = id(text)
    if key not in _STARTS:
        nl = np.flatnonzero(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) == 10) + 1
        _STARTS[key] = np.concatenate([[0], nl[nl < len(text)]])
    return _STARTS[key]


def make_prompt(rng, tok, eot, text, plen):
    """plen token ids: from a random line start of text (or, 1 in 6, the file start preceded by eot)."""
    if rng.random() < 1 / 6:
        ids = [eot] + tok.encode(text[:plen * 12], add_special_tokens=False).ids
        return ids[:plen] if len(ids) >= plen else None
    starts = _line_starts(text)
    for _ in range(4):
        s = starts[int(rng.integers(len(starts)))]
        ids = tok.encode(text[s:s + plen * 12], add_special_tokens=False).ids
        if len(ids) >= plen:
            return ids[:plen]
    return None


def greedy_batch(model, x, n):
    """x: LongTensor [B, P] -> [B, n] greedy continuation (KV cache)."""
    import torch
    from transformers import DynamicCache

    with torch.no_grad():
        out = model(input_ids=x, past_key_values=DynamicCache(config=model.config), use_cache=True, logits_to_keep=1)
        nxt = out.logits[:, -1].argmax(-1)
        toks = [nxt]
        for _ in range(n - 1):
            out = model(input_ids=nxt[:, None], past_key_values=out.past_key_values, use_cache=True)
            nxt = out.logits[:, -1].argmax(-1)
            toks.append(nxt)
    return torch.stack(toks, 1)


def collect(a, target, draft, tok):
    import torch

    eot = tok.token_to_id(pair_data.EOT)
    root, rels = pair_data.read_file_list(a.files)
    rng = np.random.default_rng(a.seed)
    texts = []
    for rel in rels:
        t = pair_data.read_text(root, rel)
        if t and len(t) > 2000:
            texts.append(t)
    lens = [int(x) for x in a.prompt_lens.split(",")]
    g, gen = a.gamma_max, a.gen
    H, E, Y, G, PL, POS = [], [], [], [], [], []
    emb_w = target.model.embed_tokens.weight
    t0, n, prompt_id, gen_checked, gen_mismatch = time.time(), 0, 0, 0, 0
    while n < a.samples and time.time() - t0 < 60 * a.minutes_data:
        plen = lens[int(rng.integers(len(lens)))]
        prompts = []
        while len(prompts) < a.batch:
            p = make_prompt(rng, tok, eot, texts[int(rng.integers(len(texts)))], plen)
            if p is not None:
                prompts.append(p)
        x = torch.tensor(prompts, dtype=torch.long)
        cont = greedy_batch(target, x, gen + g)
        seq = torch.cat([x, cont], 1)
        with torch.no_grad():
            hid = target.model(input_ids=seq).last_hidden_state  # [B, T, H] after the final norm
            t_arg = target.lm_head(hid).argmax(-1)
            d_arg = draft(input_ids=seq).logits.argmax(-1)
        # the full forward pass must reproduce the cached greedy tokens (near-ties aside)
        gen_checked += cont.numel() - cont.shape[0]
        gen_mismatch += int((t_arg[:, plen - 1:-1] != cont).sum())
        match = (d_arg[:, :-1] == seq[:, 1:]).numpy()  # match[j]: draft at input j predicts seq[j + 1]
        seq_np = seq.numpy()
        for b in range(a.batch):
            # run[j] = consecutive draft matches starting at j, capped at g
            run = np.zeros(match.shape[1] + 1, dtype=np.int64)
            for j in range(match.shape[1] - 1, -1, -1):
                run[j] = min(g, run[j + 1] + 1) if match[b, j] else 0
            for i in range(gen):
                if i > 0 and seq_np[b, plen + i - 1] == eot:
                    break  # the engine would have stopped at a generated eot
                pos = plen + i  # context = seq[:pos]; x_t = seq[pos - 1], predicted by the row at pos - 2
                if pos < 2:
                    continue
                H.append(hid[b, pos - 2].numpy().copy())
                E.append(int(seq_np[b, pos - 1]))
                Y.append(int(run[pos - 1]))
                G.append(prompt_id)
                PL.append(plen)
                POS.append(i)
            prompt_id += 1
        n = len(Y)
        log(f"collect: {prompt_id} prompts (len {plen}), {n} samples, mean label {np.mean(Y):.2f}")
    hs = np.stack(H).astype(np.float32)
    toks = np.array(E, dtype=np.int64)
    es = emb_w.detach().numpy()[toks].astype(np.float32)
    return dict(h=hs, tok=toks, emb=es, y=np.array(Y, dtype=np.int64), group=np.array(G), plen=np.array(PL),
                pos=np.array(POS), seconds=time.time() - t0, prompts=prompt_id,
                gen_recheck_mismatch=gen_mismatch / max(1, gen_checked))


# ---------------------------------------------------------------------------------------------- model


def build_net(d_in, width):
    import torch
    from torch import nn

    class LDLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(d_in, width)
            self.blocks = nn.ModuleList([nn.Linear(width, width) for _ in range(2)])
            self.out = nn.Linear(width, 1)

        def forward(self, x):
            x = self.inp(x)
            for blk in self.blocks:
                x = x + torch.nn.functional.silu(blk(x))
            return self.out(x).squeeze(-1)

    return LDLP()


def asym_l1(pred, y, under, over):
    d = y - pred  # > 0: under-prediction
    return (under * d.clamp(min=0) + over * (-d).clamp(min=0)).mean()


def train(a, X, y, tr, va):
    import torch

    torch.manual_seed(a.seed)
    mu = X[tr].mean(0)
    sd = X[tr].std(0) + 1e-4
    Xn = torch.from_numpy((X - mu) / sd)
    yt = torch.from_numpy(y.astype(np.float32))
    net = build_net(X.shape[1], a.width)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    steps_per_epoch = int(np.ceil(len(tr) / a.train_batch))
    total = steps_per_epoch * a.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=total, pct_start=0.05)
    rng = np.random.default_rng(a.seed + 1)
    Xtr, ytr, Xva, yva = Xn[tr], yt[tr], Xn[va], yt[va]
    history = []
    for ep in range(a.epochs):
        net.train()
        perm = torch.from_numpy(rng.permutation(len(tr)))
        tot = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * a.train_batch:(s + 1) * a.train_batch]
            loss = asym_l1(net(Xtr[idx]), ytr[idx], a.under_weight, a.over_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
        net.eval()
        with torch.no_grad():
            pv = net(Xva)
            vl = float(asym_l1(pv, yva, a.under_weight, a.over_weight))
            vmae = float((pv - yva).abs().mean())
        history.append(dict(epoch=ep + 1, train_loss=tot / len(tr), val_loss=vl, val_mae=vmae))
        if (ep + 1) % 5 == 0 or ep == 0 or ep == a.epochs - 1:
            log(f"epoch {ep + 1}/{a.epochs}: train asym-L1 {tot / len(tr):.4f}, val asym-L1 {vl:.4f}, val MAE {vmae:.4f}")
    return net, mu, sd, history


def predict(net, X, mu, sd):
    import torch

    with torch.no_grad():
        return net(torch.from_numpy((X - mu) / sd)).numpy()


def metrics(pred, y, under, over, g):
    d = y - pred
    fl = np.floor(pred)
    rd = np.clip(np.rint(pred), 0, g)
    return dict(
        mae=float(np.abs(d).mean()),
        asym_l1=float((under * np.clip(d, 0, None) + over * np.clip(-d, 0, None)).mean()),
        floor_pred_le_label=float((fl <= y).mean()),
        round_pred_eq_label=float((rd == y).mean()),
        round_within_1=float((np.abs(rd - y) <= 1).mean()),
        pred_mean=float(pred.mean()),
        corr=float(np.corrcoef(pred, y)[0, 1]) if np.std(pred) > 0 else 0.0,
    )


def draft_sim(k, y):
    """Drafting k tokens at each position (accepted = min(k, label)): tokens per verification, drafts per round."""
    acc = np.minimum(k, y)
    return dict(tokens_per_verification=float((acc + 1).mean()), drafted_per_round=float(k.mean()),
                wasted_per_round=float((k - acc).mean()))


# ---------------------------------------------------------------------------------------------- ONNX


def export_onnx(path, net, mu, sd, emb_fp16, hidden_size):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    W1 = net.inp.weight.detach().numpy().astype(np.float64)  # [width, 2H]
    b1 = net.inp.bias.detach().numpy().astype(np.float64)
    # standardisation folded in: W1 ((x - mu) / sd) + b1 = (W1 / sd) x + (b1 - W1 (mu / sd))
    W1f = (W1 / sd[None, :]).astype(np.float32)
    b1f = (b1 - W1 @ (mu / sd)).astype(np.float32)
    inits = [numpy_helper.from_array(emb_fp16, "embed_tokens_fp16"),
             numpy_helper.from_array(W1f, "inp.weight"), numpy_helper.from_array(b1f, "inp.bias"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat_shape")]
    nodes = [helper.make_node("Gather", ["embed_tokens_fp16", "token_id"], ["emb16"], axis=0, name="embed"),
             helper.make_node("Cast", ["emb16"], ["emb"], to=TensorProto.FLOAT, name="embed_to_fp32"),
             helper.make_node("Concat", ["hidden_state", "emb"], ["x0"], axis=1, name="concat"),
             helper.make_node("Gemm", ["x0", "inp.weight", "inp.bias"], ["x1"], transB=1, name="inp")]
    cur = "x1"
    for i, blk in enumerate(net.blocks):
        inits += [numpy_helper.from_array(blk.weight.detach().numpy().astype(np.float32), f"blocks.{i}.weight"),
                  numpy_helper.from_array(blk.bias.detach().numpy().astype(np.float32), f"blocks.{i}.bias")]
        nodes += [helper.make_node("Gemm", [cur, f"blocks.{i}.weight", f"blocks.{i}.bias"], [f"b{i}_lin"], transB=1, name=f"blocks.{i}"),
                  helper.make_node("Sigmoid", [f"b{i}_lin"], [f"b{i}_sig"], name=f"blocks.{i}.sigmoid"),
                  helper.make_node("Mul", [f"b{i}_lin", f"b{i}_sig"], [f"b{i}_silu"], name=f"blocks.{i}.silu"),
                  helper.make_node("Add", [cur, f"b{i}_silu"], [f"b{i}_out"], name=f"blocks.{i}.residual")]
        cur = f"b{i}_out"
    inits += [numpy_helper.from_array(net.out.weight.detach().numpy().astype(np.float32), "out.weight"),
              numpy_helper.from_array(net.out.bias.detach().numpy().astype(np.float32), "out.bias")]
    nodes += [helper.make_node("Gemm", [cur, "out.weight", "out.bias"], ["out2d"], transB=1, name="out"),
              helper.make_node("Reshape", ["out2d", "flat_shape"], ["length"], name="flatten")]
    graph = helper.make_graph(
        nodes, "ldlp",
        [helper.make_tensor_value_info("hidden_state", TensorProto.FLOAT, [1, hidden_size]),
         helper.make_tensor_value_info("token_id", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("length", TensorProto.FLOAT, [1])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="specula_tools.train_ldlp")
    model.ir_version = 10
    model.doc_string = ("AdaEAGLE Lightweight Draft Length Predictor: predicted accepted draft length from the target's "
                        "last hidden state and the last token id")
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def ort_session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def check_onnx(path, net, mu, sd, h, toks, emb):
    sess = ort_session(path)
    ref = predict(net, np.concatenate([h, emb], 1), mu, sd)
    diffs = []
    for i in range(len(toks)):
        out = sess.run(["length"], {"hidden_state": h[i:i + 1], "token_id": toks[i:i + 1]})[0]
        assert out.shape == (1,) and out.dtype == np.float32, (out.shape, out.dtype)
        diffs.append(abs(float(out[0]) - float(ref[i])))
    return float(max(diffs)), float(np.mean(diffs))


def check_features(onnx_dir, target, target_fp32_path, tok, files):
    """Last hidden state of the exported target (ORT) vs the torch features on one training prompt."""
    import torch
    from transformers import AutoModelForCausalLM

    from .pair_runner import OrtRunner

    r = OrtRunner(onnx_dir, threads=1)
    names = [o.name for o in r.sess.get_outputs()]
    if "last_hidden_state" not in names:
        return None
    root, rels = pair_data.read_file_list(files)
    text = next(t for t in (pair_data.read_text(root, x) for x in rels) if t and len(t) > 4000)
    ids = tok.encode(text[:2000], add_special_tokens=False).ids[:200]
    ort_h = r.sess.run(["last_hidden_state"], r.feeds(ids, None))[0][0]
    x = torch.tensor([ids])
    with torch.no_grad():
        th = target.model(input_ids=x).last_hidden_state[0].numpy()
        raw = AutoModelForCausalLM.from_pretrained(target_fp32_path, dtype=torch.float32).eval()
        th32 = raw.model(input_ids=x).last_hidden_state[0].numpy()
    return dict(tokens=len(ids), max_abs_diff=float(np.abs(ort_h - th).max()),
                max_abs_diff_unrounded_fp32=float(np.abs(ort_h - th32).max()),
                max_abs_value=float(np.abs(ort_h).max()))


# ---------------------------------------------------------------------------------------------- main


def main(argv):
    a = parse(argv)
    import torch
    from tokenizers import Tokenizer

    torch.set_num_threads(a.threads)
    t_start = time.time()
    os.makedirs(a.out, exist_ok=True)
    tok = Tokenizer.from_file(os.path.join(a.target, "tokenizer.json"))
    target, draft, rounded = load_models(a)
    hidden_size = target.config.hidden_size
    g = a.gamma_max
    log(f"target {a.target} ({rounded} weights rounded to float16), draft {a.draft}, gamma_max {g}")

    onnx_target = a.onnx_target or (a.out if os.path.exists(os.path.join(a.out, "model.onnx")) else None)
    feat = None
    if onnx_target:
        feat = check_features(onnx_target, target, a.target, tok, a.files)
        if feat:
            log(f"feature check vs {onnx_target}/model.onnx, {feat['tokens']} tokens: last_hidden_state max abs diff "
                f"{feat['max_abs_diff']:.2e} (fp16-rounded torch), {feat['max_abs_diff_unrounded_fp32']:.2e} (unrounded "
                f"fp32 torch); max |h| {feat['max_abs_value']:.1f}")

    if a.cache and os.path.exists(a.cache):
        z = np.load(a.cache)
        data = {k: z[k] for k in z.files}
        data["seconds"], data["prompts"] = float(data["seconds"]), int(data["prompts"])
        data["gen_recheck_mismatch"] = float(data["gen_recheck_mismatch"])
        log(f"loaded {len(data['y'])} samples from {a.cache}")
    else:
        data = collect(a, target, draft, tok)
        if a.cache:
            np.savez(a.cache, **data)
    y, groups = data["y"], data["group"]
    N = len(y)
    hist = np.bincount(y, minlength=g + 1).tolist()
    log(f"data: {N} samples from {data['prompts']} prompts in {data['seconds']:.0f}s; label mean {y.mean():.3f}, "
        f"histogram {hist}; cached-vs-full greedy token mismatch {data['gen_recheck_mismatch']:.4f}")

    rng = np.random.default_rng(a.seed)
    uniq = np.unique(groups)
    val_groups = set(rng.choice(uniq, size=max(1, int(round(a.val_fraction * len(uniq)))), replace=False).tolist())
    is_val = np.array([gr in val_groups for gr in groups])
    tr, va = np.where(~is_val)[0], np.where(is_val)[0]
    X = np.concatenate([data["h"], data["emb"]], 1).astype(np.float32)
    t_train = time.time()
    net, mu, sd, history = train(a, X, y, tr, va)
    t_train = time.time() - t_train
    pred_va = predict(net, X[va], mu, sd)
    pred_tr = predict(net, X[tr], mu, sd)
    ytr, yva = y[tr].astype(np.float64), y[va].astype(np.float64)
    m_val = metrics(pred_va, yva, a.under_weight, a.over_weight, g)
    m_tr = metrics(pred_tr, ytr, a.under_weight, a.over_weight, g)
    q = a.under_weight / (a.under_weight + a.over_weight)
    consts = {"mean": float(ytr.mean()), "median": float(np.median(ytr)), f"quantile_{q:.3f}": float(np.quantile(ytr, q))}
    const_metrics = {k: metrics(np.full_like(yva, v), yva, a.under_weight, a.over_weight, g) for k, v in consts.items()}
    # simulated drafting on the validation positions (no confidence extension): LDLP length vs a fixed gamma
    k_ldlp = np.clip(np.rint(pred_va), 0, g)
    sims = {"ldlp_round": draft_sim(k_ldlp, yva)}
    for fixed in (2, 3, 4, 5, 6, 8, 10):
        sims[f"fixed_{fixed}"] = draft_sim(np.full_like(yva, fixed), yva)
    sims["oracle"] = draft_sim(yva, yva)
    log(f"val ({len(va)} samples, {len(val_groups)} prompts): MAE {m_val['mae']:.3f}, asym-L1 {m_val['asym_l1']:.3f}, "
        f"floor(pred)<=label {m_val['floor_pred_le_label']:.3f}, round(pred)==label {m_val['round_pred_eq_label']:.3f}, "
        f"|round-label|<=1 {m_val['round_within_1']:.3f}, corr {m_val['corr']:.3f}")
    for k, mm in const_metrics.items():
        log(f"  constant {k} = {consts[k]:.3f}: MAE {mm['mae']:.3f}, asym-L1 {mm['asym_l1']:.3f}, "
            f"floor<=label {mm['floor_pred_le_label']:.3f}")
    for k, s in sims.items():
        log(f"  sim {k}: tokens/verification {s['tokens_per_verification']:.3f}, drafted/round "
            f"{s['drafted_per_round']:.2f}, wasted/round {s['wasted_per_round']:.2f}")

    # export + verification
    emb16 = target.model.embed_tokens.weight.detach().numpy().astype(np.float16)
    onnx_path = os.path.join(a.out, "ldlp.onnx")
    export_onnx(onnx_path, net, mu, sd, emb16, hidden_size)
    vi = va[:100]
    # the ONNX graph gathers the float16 table: feed the torch reference the same (exactly representable) rows
    emb_chk = emb16[data["tok"][vi]].astype(np.float32)
    max_diff, mean_diff = check_onnx(onnx_path, net, mu, sd, data["h"][vi], data["tok"][vi], emb_chk)
    emb_rounding = float(np.abs(emb_chk - data["emb"][vi]).max())
    size = os.path.getsize(onnx_path)
    log(f"ONNX {onnx_path}: {size / 1e6:.2f} MB; ORT vs torch on {len(vi)} validation samples: max abs diff "
        f"{max_diff:.2e} (mean {mean_diff:.2e}); embedding rows fp16 vs features max diff {emb_rounding:.1e}")
    ok = max_diff <= 1e-3

    info = {
        "gamma_max": g,
        "hidden_size": hidden_size,
        "inputs": [
            {"name": "hidden_state", "dtype": "float32", "shape": [1, hidden_size],
             "what": "target last_hidden_state (after the final norm) at the position whose logits predicted token_id"},
            {"name": "token_id", "dtype": "int64", "shape": [1], "what": "the last committed token x_t"}],
        "output": {"name": "length", "dtype": "float32", "shape": [1],
                   "what": "predicted number of accepted draft tokens (continuous, not clamped)"},
        "architecture": f"concat(h, embed(x_t)) [{2 * hidden_size}] -> Linear({2 * hidden_size}->{a.width}) -> "
                        f"2 x (x + SiLU(Linear({a.width}->{a.width})(x))) -> Linear({a.width}->1); input standardisation "
                        "folded into the first Linear; embedding table float16 inside the file",
        "loss": {"type": "asymmetric_l1", "under_prediction_weight": a.under_weight,
                 "over_prediction_weight": a.over_weight,
                 "note": f"minimised by the conditional {q:.3f}-quantile of the accepted length"},
        "samples": int(N),
        "train_samples": int(len(tr)),
        "val_samples": int(len(va)),
        "val_split": f"{len(val_groups)} of {len(uniq)} prompts (all positions of a prompt on one side)",
        "val_mae": m_val["mae"],
        "constant_baseline_mae": const_metrics["mean"]["mae"],
        "label_mean": float(y.mean()),
        "label_histogram": hist,
        "val_metrics": m_val,
        "train_metrics": m_tr,
        "constant_baselines": {k: dict(value=consts[k], **const_metrics[k]) for k in consts},
        "simulated_drafting_val": sims,
        "onnx_check": {"samples": int(len(vi)), "max_abs_diff": max_diff, "mean_abs_diff": mean_diff},
        "feature_check_vs_onnx_target": feat,
        "trained_on": (f"{data['prompts']} prompts cut from the files of {os.path.basename(a.files)} "
                       f"(Python stdlib training split), {a.gen} greedy target positions each; target "
                       f"{os.path.abspath(a.target)} with weights rounded to float16, draft {os.path.abspath(a.draft)}"),
        "data_seconds": round(float(data["seconds"]), 1),
        "train_seconds": round(t_train, 1),
        "epochs": a.epochs, "lr": a.lr, "weight_decay": a.weight_decay, "seed": a.seed,
        "history": history[-1],
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with open(os.path.join(a.out, "ldlp.json"), "w") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    log(f"wrote {onnx_path} and ldlp.json; total {time.time() - t_start:.0f}s")
    if not ok:
        print(f"train-ldlp: ONNX output differs from torch by {max_diff:.2e} > 1e-3", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
