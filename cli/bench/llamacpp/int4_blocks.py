"""int4 with int8 activations in blocks of 32, 64 and 128: the cost of a call, and why odd calls are refused.

    python cli/bench/llamacpp/int4_blocks.py MODEL_DIR [--threads 1] [--context 128] [--probes 300] [--out DIR]

MODEL_DIR is an exported float model directory (the embedded target, for instance). For blocks of 32, 64 and 128
it writes ``quantize --scheme int4-b32-a8``-style graphs (MatMulNBits, accuracy_level 4, the same quantizer,
asymmetric) and prints, with ONNX Runtime's Python package:
- t(k): one call of k = 2, 3, 4, 5 new tokens over a ``context``-token cache (best of 5 x 200 calls, the
  three graphs taking turns);
- over ``probes`` random 20-token pasts, how the logits of a row differ when it is the last row of a 3-token call
  and the third row of a 4-token call (with blocks of 64 or more the kernel computes rows two at a time, the last
  row of an odd call alone), and the smallest gap between the two best logits seen.
A benchmark: nothing runs it in CI.
"""
import argparse
import logging
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools"))
from specula_tools import quantize  # noqa: E402

BLOCKS = (32, 64, 128)
ROWS = (2, 3, 4, 5)


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class Model:
    def __init__(self, path, threads):
        self.s = session(path, threads)
        self.names = [i.name for i in self.s.get_inputs()]
        self.kv = [i for i in self.s.get_inputs() if i.name.startswith("past")]
        self.outputs = [o.name for o in self.s.get_outputs()]

    def feeds(self, ids, past, past_len):
        k = len(ids)
        f = {"input_ids": np.array([ids], np.int64),
             "position_ids": np.arange(past_len, past_len + k, dtype=np.int64)[None]}
        if "attention_mask" in self.names:
            f["attention_mask"] = np.ones((1, past_len + k), np.int64)
        if "attention_bias" in self.names:
            f["attention_bias"] = np.triu(np.full((k, past_len + k), -np.inf, np.float32), past_len + 1)[None, None]
        if "logits_to_keep" in self.names:
            f["logits_to_keep"] = np.array(k, np.int64)
        for i, kv in enumerate(self.kv):
            f[kv.name] = past[i] if past is not None else np.zeros((1, kv.shape[1], 0, kv.shape[3]), np.float32)
        return f

    def call(self, ids, past, past_len):
        out = self.s.run(None, self.feeds(ids, past, past_len))
        return out[0][0], [x for n, x in zip(self.outputs, out) if n.startswith("present")]


def timings(models, context, vocab, rounds=5):
    """t(k) of each model: the best of ``rounds`` x 200 calls, the models taking turns in every round."""
    rng = np.random.default_rng(0)
    feeds = {}
    for name, model in models.items():
        past = [rng.standard_normal((1, kv.shape[1], context, kv.shape[3])).astype(np.float32) for kv in model.kv]
        feeds[name] = {k: model.feeds(rng.integers(3, vocab, k).tolist(), past, context) for k in ROWS}
    best = {name: {k: float("inf") for k in ROWS} for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            for k in ROWS:
                for _ in range(20):
                    model.s.run(None, feeds[name][k])
                start = time.perf_counter()
                for _ in range(200):
                    model.s.run(None, feeds[name][k])
                best[name][k] = min(best[name][k], (time.perf_counter() - start) / 200 * 1e3)
    return best


def odd_rows(model, probes, vocab):
    rng = np.random.default_rng(1)
    worst, over, gap = 0.0, 0, float("inf")
    for _ in range(probes):
        _, past = model.call(rng.integers(3, vocab, 20).tolist(), None, 0)
        nxt = rng.integers(3, vocab, 4).tolist()
        odd, _ = model.call(nxt[:3], past, 20)
        even, _ = model.call(nxt, past, 20)
        diff = float(np.abs(odd[2] - even[2]).max())
        worst, over = max(worst, diff), over + (diff > 1e-4)
        top = np.sort(even[2])[-2:]
        gap = min(gap, float(top[1] - top[0]))
    return worst, over, gap


def main():
    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--out", default=None, help="where the quantized graphs go (default: a temporary directory)")
    a = parser.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="int4-blocks-")
    os.makedirs(out, exist_ok=True)
    models = {}
    for block in BLOCKS:
        path = os.path.join(out, f"b{block}.onnx")
        if not os.path.exists(path):
            quantize.SCHEMES[f"probe-b{block}"] = dict(bits=4, block_size=block, accuracy_level=4)
            quantize.quantize_graph(os.path.join(a.model_dir, "model.onnx"), path, f"probe-b{block}",
                                    log=lambda *args: None)
        models[block] = Model(path, a.threads)
    width = models[BLOCKS[0]].s.get_outputs()[0].shape[-1]
    vocab = min(4000, width) if isinstance(width, int) else 4000
    t = timings(models, a.context, vocab)
    for block, model in models.items():
        first = t[BLOCKS[0]]
        worst, over, gap = odd_rows(model, a.probes, vocab)
        print(f"blocks of {block}: " + ", ".join(f"t({k}) {t[block][k]:.3f} ms ({t[block][k] / first[k]:.2f}x b32)"
                                                 for k in ROWS))
        print(f"  a row last of a 3-token call vs third of a 4-token call, {a.probes} probes: max |diff| {worst:.3g}, "
              f"{over} probes above 1e-4; smallest top-2 gap {gap:.3g}")


if __name__ == "__main__":
    main()
