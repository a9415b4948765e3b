"""One model's two graphs in one process, calls alternating: what the packed graph saves per call.

    python cli/bench/llamacpp/graph_ab.py MODEL_DIR [--k 1,2,5,8] [--past 128] [--calls 400] [--threads 1]
    python cli/bench/llamacpp/graph_ab.py MODEL_DIR --other OTHER_DIR [--graph model_packed.onnx] ...
    python cli/bench/llamacpp/graph_ab.py MODEL_DIR --onnx-rotary [--swap] ...

MODEL_DIR holds model.onnx (the attention_mask graph) and model_packed.onnx (``export --packed``). Each graph gets
one ONNX Runtime session (float16-stored weights unfolded to float32 first, as the engine does at load); for each
k, a call of k new tokens over a ``past``-token cache runs on each graph in turn, ``calls`` times, and the medians
are printed with their ratio. Alternating call by call keeps a noisy machine's slow and fast spells out of the
ratio. With --other, one graph file (--graph) of two exports of one checkpoint instead: what an export change
saves per call (the second over the first). With --onnx-rotary, --graph against itself with its contrib
RotaryEmbedding nodes as ONNX's opset-23 operator (outputs compared first). --other MODEL_DIR (the same export
twice) is the control: a process's first session can run 5-10 % slower than its second (docs/benchmarks.md), so an
A/B takes both orders, --swap running the second session first. A benchmark: nothing runs it in CI.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools"))
from specula_tools.quantize import unfold_fp16_weights  # noqa: E402

GRAPHS = ("model.onnx", "model_packed.onnx")


def session(directory, graph, threads, tmp, onnx_rotary=False):
    model = onnx.load(os.path.join(directory, graph))
    unfold_fp16_weights(model)
    if onnx_rotary:
        to_onnx_rotary(model)
    path = os.path.join(tmp, graph)
    onnx.save(model, path, save_as_external_data=True, location=graph + "_data")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def to_onnx_rotary(model):
    """Every com.microsoft RotaryEmbedding (x, position_ids, cos, sin) of model, in If branches too, as ONNX's own
    RotaryEmbedding of opset 23 (x, cos, sin, position_ids), whose CPU kernel is MLAS's vectorised row; the model's
    ONNX opset becomes 23 (IR 11)."""
    def rewrite(graph):
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    rewrite(attribute.g)
            if node.op_type == "RotaryEmbedding" and node.domain == "com.microsoft":
                x, positions, cos, sin = node.input
                node.ClearField("input")
                node.input.extend([x, cos, sin, positions])
                node.domain = ""

    rewrite(model.graph)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 23
    model.ir_version = 11


def feeds(sess, config, k, past, rng):
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    out = {}
    for value in sess.get_inputs():
        name = value.name
        if name == "input_ids":
            out[name] = rng.integers(0, config["vocab_size"], (1, k), dtype=np.int64)
        elif name == "position_ids":
            out[name] = np.arange(past, past + k, dtype=np.int64).reshape(1, k)
        elif name == "attention_mask":
            out[name] = np.ones((1, past + k), np.int64)
        elif name == "attention_bias":  # [1, 1, k, past + k]: the past, and the new tokens causally
            bias = np.zeros((1, 1, k, past + k), np.float32)
            for row in range(k):
                bias[0, 0, row, past + row + 1:] = -np.inf
            out[name] = bias
        elif name.startswith("past_key_values"):
            out[name] = rng.standard_normal((1, kv_heads, past, head_dim), dtype=np.float32)
        elif name == "logits_to_keep":
            out[name] = np.array(k, np.int64)
        else:
            raise SystemExit(f"graph_ab: unknown input {name}")
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--k", default="1,2,5,8")
    parser.add_argument("--past", type=int, default=128)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--other", help="a second export of the same checkpoint: its --graph against MODEL_DIR's")
    parser.add_argument("--graph", default="model_packed.onnx", help="the graph file compared with --other")
    parser.add_argument("--onnx-rotary", action="store_true",
                        help="--graph against itself with ONNX's opset-23 RotaryEmbedding (to_onnx_rotary)")
    parser.add_argument("--swap", action="store_true", help="the second session first (a process's second runs faster)")
    args = parser.parse_args()
    same = args.other and os.path.realpath(args.other) == os.path.realpath(args.model_dir)  # a control
    if args.other:  # (label, directory, graph file, ONNX rotary)
        runs = [(f"{os.path.basename(os.path.normpath(d))}/{args.graph}{tag}", d, args.graph, False)
                for d, tag in ((args.model_dir, ""), (args.other, " (again)" if same else ""))]
    elif args.onnx_rotary:
        runs = [(f"{args.graph}{tag}", args.model_dir, args.graph, onnx_rotary)
                for tag, onnx_rotary in (("", False), (" (ONNX rotary)", True))]
    else:
        runs = [(graph, args.model_dir, graph, False) for graph in GRAPHS]
    if args.swap:
        runs.reverse()
    with open(os.path.join(args.model_dir, "config.json")) as f:
        config = json.load(f)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for i, (label, directory, graph, onnx_rotary) in enumerate(runs):
            os.makedirs(os.path.join(tmp, str(i)))
            sessions[label] = session(directory, graph, args.threads, os.path.join(tmp, str(i)), onnx_rotary)
        if args.onnx_rotary:  # the same computation, or the times mean nothing
            probe = feeds(next(iter(sessions.values())), config, 3, args.past, np.random.default_rng(1))
            outs = [sess.run(None, probe) for sess in sessions.values()]
            diff = max(float(np.abs(x - y).max()) for x, y in zip(*outs))
            print(f"max |difference| of every output, a 3-token call: {diff}")
        for k in (int(x) for x in args.k.split(",")):
            inputs = {graph: feeds(sess, config, k, args.past, rng) for graph, sess in sessions.items()}
            times = {graph: [] for graph in sessions}
            for graph, sess in sessions.items():
                for _ in range(10):
                    sess.run(None, inputs[graph])
            for _ in range(args.calls):
                for graph, sess in sessions.items():
                    start = time.perf_counter()
                    sess.run(None, inputs[graph])
                    times[graph].append(time.perf_counter() - start)
            (first, a), (second, b) = ((label, statistics.median(times[label]) * 1e3) for label in sessions)
            print(f"past {args.past} k {k}: {first} {a:.3f} ms, {second} {b:.3f} ms, second / first {b / a:.3f}")


if __name__ == "__main__":
    main()
