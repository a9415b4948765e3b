"""Verification of an exported decoder against transformers, run with ONNX Runtime (CPU, 1 thread).

Checks (max abs diffs are printed; any failure makes ``verify`` return False):
  greedy   ORT greedy decoding from an empty past (prefill, then 1 token/step feeding present back as past)
           reproduces transformers ``generate(do_sample=False)`` on 3 prompts x 20 tokens (eos disabled).
  step     a 5-token step over a non-empty past (HF's own cache) matches HF logits.
  batch    (mask variant) two left-padded prompts in one batch give the logits of each prompt alone.
  holes    a past with masked garbage slots in the middle gives the same logits as a compact past.
  packed   (--packed) two sequences packed in one row give the same logits as each alone.
  hidden   (--with-hidden) last_hidden_state matches HF's final (post-norm) hidden state.
  window   (sliding-window layers) prompts longer than the window: ORT greedy == transformers generate, a
           5-token step over a past of 2 windows == HF logits, and a past with masked holes inside the
           window == a compact past (the window counts logical positions, not physical slots).
  keep     (graphs with a logits_to_keep input) logits_to_keep = 1 and 3 give the last 1 and 3 rows of the
           logits of every position (logits_to_keep = 0); greedy above already prefills with logits_to_keep = 1.
"""
import copy

import numpy as np
import torch

from . import export_families
from .export_core import MASK_MIN_FP32, geometry, io_names

PROMPTS = [
    "def fibonacci(n):\n    ",
    "import os\nimport sys\n\nclass Config:",
    "The quick brown fox jumps over the lazy dog. Ünïcödé ✓",
]
GREEDY_TOKENS = 20

# Tolerances (max abs diff of logits). fp16: the graph computes in float16 end to end (logits cast to float32
# at the end), so it is compared with transformers' float16 model with a looser bound, plus exact greedy ids.
# Rounding differences grow with the logits' magnitude: the limits hold for max|logit| <= 10 and scale with
# max(1, max|logit| / 10) beyond (trained or large models).
TOL = {
    False: dict(step=1e-3, hidden=1e-3, holes=1e-4, packed=1e-4, batch=1e-4, keep=1e-5),
    True: dict(step=5e-2, hidden=5e-2, holes=2e-2, packed=2e-2, batch=2e-2, keep=1e-5),
}


class OrtDecoder:
    def __init__(self, onnx_path, model, packed, with_hidden, fp16):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        self.layers, self.kv_heads, self.head_dim, _ = geometry(model.config)
        self.packed = packed
        self.with_hidden = with_hidden
        self.kv_dtype = np.float16 if fp16 else np.float32
        got_in = [i.name for i in self.sess.get_inputs()]
        got_out = [o.name for o in self.sess.get_outputs()]
        self.keep = "logits_to_keep" in got_in
        self.in_names, self.out_names = io_names(self.layers, packed, with_hidden, self.keep)
        self.past_names = [n for n in self.in_names if n.startswith("past_key_values.")]
        if got_in != self.in_names or got_out != self.out_names:
            raise AssertionError(f"unexpected ONNX I/O names:\n  inputs {got_in}\n  outputs {got_out}")

    def empty_past(self, batch=1):
        return [np.zeros((batch, self.kv_heads, 0, self.head_dim), dtype=self.kv_dtype)
                for _ in range(2 * self.layers)]

    def run_raw(self, ids, mask, pos, past, keep=0):
        """keep: logits_to_keep when the graph has it (0 = the logits of every position)."""
        feed = {"input_ids": np.asarray(ids, dtype=np.int64), "position_ids": np.asarray(pos, dtype=np.int64)}
        feed[self.in_names[1]] = mask
        if self.keep:
            feed["logits_to_keep"] = np.asarray(keep, dtype=np.int64)
        for name, t in zip(self.past_names, past):
            feed[name] = t
        outs = self.sess.run(None, feed)
        res = dict(zip(self.out_names, outs))
        res["present"] = outs[1:1 + 2 * self.layers]
        return res

    def step(self, ids, pos, past, slot_valid=None, keep=0):
        """Batch-1 step. slot_valid: 0/1 per physical slot [past+s] (default all 1); causal by physical index."""
        ids = np.asarray(ids, dtype=np.int64).reshape(1, -1)
        s = ids.shape[1]
        p = past[0].shape[2]
        valid = np.ones(p + s, dtype=np.int64) if slot_valid is None else np.asarray(slot_valid, dtype=np.int64)
        if self.packed:
            causal = np.arange(p + s)[None, :] <= (np.arange(s) + p)[:, None]
            allowed = causal & (valid[None, :] > 0)
            mask = np.where(allowed, 0.0, MASK_MIN_FP32).astype(np.float32)[None, None]
        else:
            mask = valid.reshape(1, -1)
        return self.run_raw(ids, mask, np.asarray(pos, dtype=np.int64).reshape(1, -1), past, keep)


def _maxdiff(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _hf_past(cache):
    out = []
    for layer in cache.layers:
        out += [layer.keys.detach().cpu().numpy(), layer.values.detach().cpu().numpy()]
    return out


def _prompt_ids(tokenizer, text):
    ids = tokenizer(text)["input_ids"]
    return ids if ids else [tokenizer.eos_token_id or 0]


def _generate(model, ids, n):
    gc = copy.deepcopy(model.generation_config)
    gc.do_sample = False
    gc.max_new_tokens = n
    gc.min_new_tokens = None
    gc.eos_token_id = []  # None would fall back to the model default; [] disables stopping, logits untouched
    gc.temperature = None
    gc.top_p = None
    gc.top_k = None
    if gc.pad_token_id is None:
        gc.pad_token_id = 0
    x = torch.tensor([ids])
    with torch.no_grad():
        out = model.generate(x, attention_mask=torch.ones_like(x), generation_config=gc)
    return out[0, len(ids):].tolist()


def _greedy_margins(model, ids, n):
    """top1 - top2 logit margins along HF's greedy path (to report how far from ties the comparison is)."""
    x = list(ids)
    margins = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([x])).logits[0, -1].float()
            top = torch.topk(logits, 2).values
            margins.append(float(top[0] - top[1]))
            x.append(int(torch.argmax(logits)))
    return margins


def ort_greedy(dec, ids, n):
    past = dec.empty_past()
    res = dec.step(ids, np.arange(len(ids)), past, keep=1)
    out = []
    tok = int(np.argmax(res["logits"][0, -1]))
    pos = len(ids)
    for _ in range(n):
        out.append(tok)
        if len(out) == n:
            break
        res = dec.step([tok], [pos], res["present"], keep=1)
        pos += 1
        tok = int(np.argmax(res["logits"][0, -1]))
    return out


def verify(onnx_path, model, tokenizer, with_hidden=False, packed=False, fp16=False, quiet=False):
    torch.set_num_threads(1)
    tol = TOL[bool(fp16)]
    dec = OrtDecoder(onnx_path, model, packed, with_hidden, fp16)
    vocab = model.config.get_text_config(decoder=True).vocab_size
    rng = np.random.default_rng(1234)
    report, ok = [], True

    scale = 1.0

    def check(name, value, limit, extra=""):
        nonlocal ok
        limit = limit * scale
        good = value <= limit
        ok &= good
        report.append(f"  {name:<8} max|diff| {value:.3e}  (limit {limit:.1e}) {'ok' if good else 'FAIL'} {extra}")

    # (a) greedy from an empty past
    bad = []
    min_margin = float("inf")
    for text in PROMPTS:
        ids = _prompt_ids(tokenizer, text)
        hf = _generate(model, ids, GREEDY_TOKENS)
        ox = ort_greedy(dec, ids, GREEDY_TOKENS)
        if hf != ox or len(hf) != GREEDY_TOKENS:
            bad.append((text, hf, ox))
        min_margin = min(min_margin, min(_greedy_margins(model, ids, 8)))
    ok &= not bad
    report.append(f"  greedy   {len(PROMPTS) - len(bad)}/{len(PROMPTS)} prompts x {GREEDY_TOKENS} tokens identical "
                  f"{'ok' if not bad else 'FAIL'} (min top1-top2 margin {min_margin:.3g})")
    for text, hf, ox in bad:
        report.append(f"    prompt {text!r}\n      hf  {hf}\n      ort {ox}")

    # (b) multi-token step over a non-empty past taken from HF's cache
    from transformers import DynamicCache

    prompt = _prompt_ids(tokenizer, PROMPTS[1])[:12]
    new = rng.integers(0, vocab, size=5).tolist()
    P = len(prompt)
    with torch.no_grad():
        cache = DynamicCache(config=model.config)
        model(torch.tensor([prompt]), past_key_values=cache, use_cache=True)
        past = [t.astype(dec.kv_dtype) for t in _hf_past(cache)]
        pos = torch.arange(P, P + 5)[None]
        hf_out = model.base_model(input_ids=torch.tensor([new]), position_ids=pos,
                                  attention_mask=torch.ones(1, P + 5, dtype=torch.long),
                                  past_key_values=cache, use_cache=True)
        hf_hidden = hf_out.last_hidden_state
        hf_logits = export_families.final_logits(model.config, model.get_output_embeddings()(hf_hidden).float())
        hf_logits = hf_logits.numpy()
    res = dec.step(new, np.arange(P, P + 5), past)
    scale = max(1.0, float(np.max(np.abs(hf_logits))) / 10.0)
    if scale > 1.0:
        report.append(f"  (max|logit| {10 * scale:.1f}: limits scaled by {scale:.2f})")
    check("step", _maxdiff(res["logits"], hf_logits), tol["step"], f"(past {P}, 5 new tokens)")
    if with_hidden:
        check("hidden", _maxdiff(res["last_hidden_state"], hf_hidden.float().numpy()), tol["hidden"])
    if dec.keep:
        d = 0.0
        for k in (1, 3):
            kept = dec.step(new, np.arange(P, P + 5), past, keep=k)
            d = max(d, _maxdiff(kept["logits"], res["logits"][:, -k:]),
                    *(_maxdiff(a, b) for a, b in zip(kept["present"], res["present"])))
        check("keep", d, tol["keep"], "(logits_to_keep 1 and 3 vs the last rows of all 5; presents unchanged)")

    # (c) holes: masked garbage slots in the middle of the past vs a compact past (ORT vs ORT)
    x = _prompt_ids(tokenizer, PROMPTS[0]) + rng.integers(0, vocab, size=4).tolist()
    P = len(x)
    garbage = rng.integers(0, vocab, size=3).tolist()
    cont = rng.integers(0, vocab, size=2).tolist()
    final = rng.integers(0, vocab, size=5).tolist()
    r, m = len(garbage), len(cont)
    pre = dec.step(x, np.arange(P), dec.empty_past())
    c1 = dec.step(cont, np.arange(P, P + m), pre["present"])
    c2 = dec.step(final, np.arange(P + m, P + m + 5), c1["present"])
    g = dec.step(garbage, np.arange(P, P + r), pre["present"])
    valid1 = [1] * P + [0] * r + [1] * m
    h1 = dec.step(cont, np.arange(P, P + m), g["present"], valid1)
    h2 = dec.step(final, np.arange(P + m, P + m + 5), h1["present"], valid1 + [1] * 5)
    d = max(_maxdiff(h1["logits"], c1["logits"]), _maxdiff(h2["logits"], c2["logits"]))
    check("holes", d, tol["holes"], f"({r} masked slots between past {P} and {m} tokens, then 5)")

    # (d) batch with left padding (mask variant): each row equals the prompt alone
    if not packed:
        a = _prompt_ids(tokenizer, PROMPTS[1])[:9]
        b = _prompt_ids(tokenizer, PROMPTS[2])[:5]
        L = max(len(a), len(b))
        ids = np.zeros((2, L), dtype=np.int64)
        mask = np.zeros((2, L), dtype=np.int64)
        pos = np.zeros((2, L), dtype=np.int64)
        for row, seq in enumerate((a, b)):
            pad = L - len(seq)
            ids[row, pad:] = seq
            mask[row, pad:] = 1
            pos[row, pad:] = np.arange(len(seq))
        both = dec.run_raw(ids, mask, pos, dec.empty_past(2))
        nxt = rng.integers(0, vocab, size=(2, 2))
        mask2 = np.concatenate([mask, np.ones((2, 2), dtype=np.int64)], axis=1)
        pos2 = np.stack([np.arange(len(a), len(a) + 2), np.arange(len(b), len(b) + 2)])
        both2 = dec.run_raw(nxt, mask2, pos2, both["present"])
        d = 0.0
        for row, seq in enumerate((a, b)):
            alone = dec.step(seq, np.arange(len(seq)), dec.empty_past())
            alone2 = dec.step(nxt[row], np.arange(len(seq), len(seq) + 2), alone["present"])
            d = max(d, _maxdiff(both["logits"][row, L - len(seq):], alone["logits"][0]),
                    _maxdiff(both2["logits"][row], alone2["logits"][0]))
        check("batch", d, tol["batch"], "(2 left-padded rows vs alone, prefill + 2-token step)")

    # (e) packed: two sequences in one row vs each alone
    if packed:
        a = _prompt_ids(tokenizer, PROMPTS[0])[:7]
        b = _prompt_ids(tokenizer, PROMPTS[2])[:4]
        na = rng.integers(0, vocab, size=3).tolist()
        nb = rng.integers(0, vocab, size=2).tolist()
        ra = dec.step(a, np.arange(len(a)), dec.empty_past())
        rb = dec.step(b, np.arange(len(b)), dec.empty_past())
        pa, pb = len(a), len(b)
        alone_a = dec.step(na, np.arange(pa, pa + 3), ra["present"])
        alone_b = dec.step(nb, np.arange(pb, pb + 2), rb["present"])
        past = [np.concatenate([ta, tb], axis=2) for ta, tb in zip(ra["present"], rb["present"])]
        s, tot = 5, pa + pb + 5
        allowed = np.zeros((s, tot), dtype=bool)
        for i in range(3):   # a's new tokens: a's segment + a's new tokens up to itself
            allowed[i, :pa] = True
            allowed[i, pa + pb:pa + pb + i + 1] = True
        for i in range(2):   # b's new tokens: b's segment + b's new tokens up to itself
            allowed[3 + i, pa:pa + pb] = True
            allowed[3 + i, pa + pb + 3:pa + pb + 3 + i + 1] = True
        bias = np.where(allowed, 0.0, MASK_MIN_FP32).astype(np.float32)[None, None]
        pos = np.array([[pa, pa + 1, pa + 2, pb, pb + 1]], dtype=np.int64)
        both = dec.run_raw(np.array([na + nb], dtype=np.int64), bias, pos, past)
        d = max(_maxdiff(both["logits"][0, :3], alone_a["logits"][0]),
                _maxdiff(both["logits"][0, 3:], alone_b["logits"][0]))
        # -inf as the masked value must work too
        bias_inf = np.where(allowed, 0.0, -np.inf).astype(np.float32)[None, None]
        both_inf = dec.run_raw(np.array([na + nb], dtype=np.int64), bias_inf, pos, past)
        d = max(d, _maxdiff(both_inf["logits"], both["logits"]))
        # both prompts prefilled in one packed call, then 3 new tokens each: b's positions restart below a's
        # (GroupQueryAttention's own rotary got this wrong, export_fused.py)
        prompts = a + b
        allowed = np.zeros((pa + pb, pa + pb), dtype=bool)
        for i in range(pa + pb):
            start = 0 if i < pa else pa
            allowed[i, start:i + 1] = True
        first = dec.run_raw(np.array([prompts], dtype=np.int64),
                            np.where(allowed, 0.0, MASK_MIN_FP32).astype(np.float32)[None, None],
                            np.array([list(range(pa)) + list(range(pb))], dtype=np.int64), dec.empty_past())
        nb3 = rng.integers(0, vocab, size=3).tolist()
        alone_b3 = dec.step(nb3, np.arange(pb, pb + 3), rb["present"])
        allowed = np.zeros((6, pa + pb + 6), dtype=bool)
        for i in range(3):
            allowed[i, :pa] = True
            allowed[i, pa + pb:pa + pb + i + 1] = True
            allowed[3 + i, pa:pa + pb] = True
            allowed[3 + i, pa + pb + 3:pa + pb + 4 + i] = True
        pos = np.array([[pa, pa + 1, pa + 2, pb, pb + 1, pb + 2]], dtype=np.int64)
        both3 = dec.run_raw(np.array([na + nb3], dtype=np.int64),
                            np.where(allowed, 0.0, MASK_MIN_FP32).astype(np.float32)[None, None], pos,
                            first["present"])
        d = max(d, _maxdiff(both3["logits"][0, :3], alone_a["logits"][0]),
                _maxdiff(both3["logits"][0, 3:], alone_b3["logits"][0]))
        check("packed", d, tol["packed"], "(2 sequences in one row vs alone; -1e9 and -inf bias; a packed prefill "
                                          "then 3 tokens each)")

    window = export_families.sliding_window(model.config)
    if window is not None:
        _check_window(dec, model, vocab, window, rng, check, report)

    if not quiet:
        print(f"verify {onnx_path} ({'fp16' if fp16 else 'fp32'}{', packed' if packed else ''}"
              f"{', with-hidden' if with_hidden else ''}):")
        print("\n".join(report))
    return bool(ok)


def _check_window(dec, model, vocab, window, rng, check, report):
    """Sliding-window checks with sequences of 2-4 windows and holes inside the window."""
    from transformers import DynamicCache

    # (1) greedy from an empty past over a prompt of 2 windows + 3, generating past 3 windows: HF uses its own
    # sliding-window cache and mask, so this compares against an independent implementation of the window.
    prompt = rng.integers(0, vocab, size=2 * window + 3).tolist()
    n = window + 4
    hf = _generate(model, prompt, n)
    ox = ort_greedy(dec, prompt, n)
    same = hf == ox
    report.append(f"  window   greedy over a {len(prompt)}-token prompt, {n} new tokens (window {window}) "
                  f"{'identical ok' if same else 'FAIL'}")
    if not same:
        report.append(f"      hf  {hf}\n      ort {ox}")
        check("window", float("inf"), 0.0, "(greedy differs)")

    # (2) a 5-token step over a past of 2 windows + 3 from HF's own cache, logits vs HF
    P = len(prompt)
    new = rng.integers(0, vocab, size=5).tolist()
    with torch.no_grad():
        full = model(torch.tensor([prompt + new])).logits[0, P:].float().numpy()
    pre = dec.step(prompt, np.arange(P), dec.empty_past())
    step = dec.step(new, np.arange(P, P + 5), pre["present"])
    check("window", _maxdiff(step["logits"][0], full), TOL[bool(dec.kv_dtype == np.float16)]["step"],
          f"(5 new tokens over past {P} vs transformers, no cache)")

    # (3) holes inside the window: past P, then window//2 + 3 rejected slots (masked), then 3 accepted tokens
    # and a 5-token step, vs the same tokens over a compact past; and vs transformers over the same ids.
    holes = window // 2 + 3
    garbage = rng.integers(0, vocab, size=holes).tolist()
    cont = rng.integers(0, vocab, size=3).tolist()
    final = rng.integers(0, vocab, size=5).tolist()
    c1 = dec.step(cont, np.arange(P, P + 3), pre["present"])
    c2 = dec.step(final, np.arange(P + 3, P + 8), c1["present"])
    g = dec.step(garbage, np.arange(P, P + holes), pre["present"])
    valid1 = [1] * P + [0] * holes + [1] * 3
    h1 = dec.step(cont, np.arange(P, P + 3), g["present"], valid1)
    h2 = dec.step(final, np.arange(P + 3, P + 8), h1["present"], valid1 + [1] * 5)
    d = max(_maxdiff(h1["logits"], c1["logits"]), _maxdiff(h2["logits"], c2["logits"]))
    check("window", d, TOL[bool(dec.kv_dtype == np.float16)]["holes"],
          f"(holes: {holes} masked slots inside the window after past {P}, 3 + 5 tokens, vs compact)")
    with torch.no_grad():
        ref = model(torch.tensor([prompt + cont + final])).logits[0, P:].float().numpy()
    d = max(_maxdiff(h1["logits"][0], ref[:3]), _maxdiff(h2["logits"][0], ref[3:]))
    check("window", d, TOL[bool(dec.kv_dtype == np.float16)]["step"], "(holes path vs transformers)")

    # (4) --packed: two sequences longer than the window in one row (b's segment sits between a's past and a's
    # new tokens, so a physical window would lose a's past) vs each alone
    if dec.packed:
        a, b = prompt, rng.integers(0, vocab, size=window + 5).tolist()
        na = rng.integers(0, vocab, size=3).tolist()
        nb = rng.integers(0, vocab, size=2).tolist()
        pa, pb = len(a), len(b)
        ra, rb = pre, dec.step(b, np.arange(pb), dec.empty_past())
        alone_a = dec.step(na, np.arange(pa, pa + 3), ra["present"])
        alone_b = dec.step(nb, np.arange(pb, pb + 2), rb["present"])
        past = [np.concatenate([ta, tb], axis=2) for ta, tb in zip(ra["present"], rb["present"])]
        tot = pa + pb + 5
        allowed = np.zeros((5, tot), dtype=bool)
        for i in range(3):
            allowed[i, :pa] = True
            allowed[i, pa + pb:pa + pb + i + 1] = True
        for i in range(2):
            allowed[3 + i, pa:pa + pb] = True
            allowed[3 + i, pa + pb + 3:pa + pb + 3 + i + 1] = True
        bias = np.where(allowed, 0.0, MASK_MIN_FP32).astype(np.float32)[None, None]
        pos = np.array([[pa, pa + 1, pa + 2, pb, pb + 1]], dtype=np.int64)
        both = dec.run_raw(np.array([na + nb], dtype=np.int64), bias, pos, past)
        d = max(_maxdiff(both["logits"][0, :3], alone_a["logits"][0]),
                _maxdiff(both["logits"][0, 3:], alone_b["logits"][0]))
        check("window", d, TOL[bool(dec.kv_dtype == np.float16)]["packed"],
              f"(packed: sequences of {pa} and {pb} tokens in one row vs alone)")

