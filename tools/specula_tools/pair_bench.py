"""ONNX Runtime timing, int8 quantization and MANIFEST for the embedded pair.

    python -m specula_tools.pair_bench time DIR [DIR ...] [--past 128 --repeats 200]
        median ms per session.run, intra_op_num_threads=1, CPU: 1 new token and 5 new tokens at past 128.
    python -m specula_tools.pair_bench quantize SRC_DIR DST_DIR [--per-channel]
        copy an exported dir with model.onnx dynamically quantized (int8 weights, MatMul only); logits,
        present.* and last_hidden_state stay float32.
    python -m specula_tools.pair_bench agree REF_DIR OTHER_DIR [--heldout-files FILE --prompts 16 --gen 64]
        greedy token agreement (per position, with the reference's tokens forced) and exact-sequence match.
    python -m specula_tools.pair_bench manifest ROOT
        writes ROOT/MANIFEST: "<sha256>  <relative path>" for every file under ROOT (sorted).
"""
import argparse
import hashlib
import os
import shutil
import sys
import time

import numpy as np


def time_dir(path, past=128, repeats=200, file="model.onnx"):
    from .pair_runner import OrtRunner

    r = OrtRunner(path, threads=1, file=file)
    rng = np.random.default_rng(0)
    kv = [(rng.standard_normal((1, r.kv_heads, past, r.head_dim)).astype(r.past_dtype),
           rng.standard_normal((1, r.kv_heads, past, r.head_dim)).astype(r.past_dtype)) for _ in range(r.layers)]
    res = {}
    for s in (1, 5):
        feeds = r.feeds(list(rng.integers(0, 4000, size=s)), kv)
        for _ in range(20):
            r.sess.run(r.out_names, feeds)
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            r.sess.run(r.out_names, feeds)
            ts.append(time.perf_counter() - t)
        res[s] = 1000 * float(np.median(ts))
    return res


def quantize(src, dst, per_channel=False):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
        if not f.startswith("model.onnx"):
            shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
    quantize_dynamic(os.path.join(src, "model.onnx"), os.path.join(dst, "model.onnx"), weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul"], per_channel=per_channel,
                     extra_options={"MatMulConstBOnly": True})


def agree(ref_dir, other_dir, heldout_files=None, prompts=16, gen=64, prompt_len=128):
    from tokenizers import Tokenizer

    from . import pair_data
    from .eval_pair import greedy, pick_prompts
    from .pair_runner import open_runner

    tok = Tokenizer.from_file(os.path.join(ref_dir, "tokenizer.json"))
    if heldout_files:
        root, rels = pair_data.read_file_list(heldout_files)
    else:
        root, _, rels = pair_data.split_corpus()
    a, b = open_runner(ref_dir), open_runner(other_dir)
    ps = pick_prompts(tok, root, rels, prompts, prompt_len, gen + 1)
    same_pos, n_pos, same_seq, maxdiff = 0, 0, 0, 0.0
    for _, _, p in ps:
        ga = greedy(a, p, gen)
        gb = greedy(b, p, gen)
        same_seq += ga == gb
        la, _ = a.forward(list(p) + ga, None)
        lb, _ = b.forward(list(p) + ga, None)
        pa = la[len(p) - 1:-1].argmax(-1)
        pb = lb[len(p) - 1:-1].argmax(-1)
        same_pos += int((pa == pb).sum())
        n_pos += len(pa)
        maxdiff = max(maxdiff, float(np.abs(la - lb).max()))
    return dict(prompts=len(ps), gen=gen, forced_position_agreement=same_pos / n_pos,
                identical_greedy_sequences=same_seq, max_abs_logit_diff=maxdiff)


def manifest(root):
    rows = []
    for dp, _, fs in os.walk(root):
        for f in fs:
            full = os.path.join(dp, f)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel == "MANIFEST":
                continue
            h = hashlib.sha256()
            with open(full, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            rows.append((rel, h.hexdigest()))
    rows.sort()
    with open(os.path.join(root, "MANIFEST"), "w") as fh:
        for rel, h in rows:
            fh.write(f"{h}  {rel}\n")
    return rows


def main(argv):
    p = argparse.ArgumentParser(prog="pair_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("time")
    t.add_argument("dirs", nargs="+")
    t.add_argument("--past", type=int, default=128)
    t.add_argument("--repeats", type=int, default=200)
    q = sub.add_parser("quantize")
    q.add_argument("src")
    q.add_argument("dst")
    q.add_argument("--per-channel", action="store_true")
    g = sub.add_parser("agree")
    g.add_argument("ref")
    g.add_argument("other")
    g.add_argument("--heldout-files")
    g.add_argument("--prompts", type=int, default=16)
    g.add_argument("--gen", type=int, default=64)
    m = sub.add_parser("manifest")
    m.add_argument("root")
    a = p.parse_args(argv)
    if a.cmd == "time":
        for d in a.dirs:
            r = time_dir(d, a.past, a.repeats)
            size = os.path.getsize(os.path.join(d, "model.onnx")) / 1e6
            print(f"{d}: {size:.2f} MB  1 token {r[1]:.3f} ms  5 tokens {r[5]:.3f} ms  (past {a.past}, 1 thread)")
    elif a.cmd == "quantize":
        quantize(a.src, a.dst, a.per_channel)
        print(f"{a.dst}/model.onnx: {os.path.getsize(os.path.join(a.dst, 'model.onnx')) / 1e6:.2f} MB")
    elif a.cmd == "agree":
        print(agree(a.ref, a.other, a.heldout_files, a.prompts, a.gen))
    elif a.cmd == "manifest":
        rows = manifest(a.root)
        print(f"{a.root}/MANIFEST: {len(rows)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
