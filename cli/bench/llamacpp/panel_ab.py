"""A decoder graph against itself with its float32 weight MatMuls as the engine's PanelMatMul, calls alternating.

    LIB=engine/target/classes/dev/specula/native/linux-x86_64/libspecula_kernels.so     (built by ./mvnw install)
    python cli/bench/llamacpp/panel_ab.py MODEL_DIR --lib $LIB [--graph model_packed.onnx]
        [--k 1,2,4,8] [--past 64] [--calls 200] [--threads 1] [--swap | --only MatMul|PanelMatMul]

Both sessions load MODEL_DIR's graph (float16-stored weights unfolded to float32, as graph_ab.py does); in the
second, every MatMul whose weight is a float32 initializer [K, N] with N a multiple of 16 (or a Transpose of one,
the tied output head) reads the same weight in panels of 16 columns ([N/16, K, 16]) through PanelMatMul. For each
k, the largest difference of the logits is printed, then the median time of a k-token call over a `past`-token
cache on each, calls taking turns. A process's first session can run slower than its second (docs/benchmarks.md):
take both orders (--swap: the panel graph first). A prototype's benchmark: nothing runs it in CI.
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
import onnx.numpy_helper as numpy_helper
import onnxruntime as ort
from onnx import helper

sys.path.insert(0, os.path.dirname(__file__))
import graph_ab  # noqa: E402

DOMAIN = "dev.specula.kernels"


def to_panels(model):
    """Every float32 weight MatMul of model as PanelMatMul over the weight in panels; returns how many."""
    initializers = {i.name: i for i in model.graph.initializer}
    producers = {output: node for node in model.graph.node for output in node.output}
    added = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.domain:
            continue
        weight = node.input[1]
        if weight in initializers:
            w = numpy_helper.to_array(initializers[weight])  # [K, N]
        elif weight in producers and producers[weight].op_type == "Transpose" \
                and producers[weight].input[0] in initializers:
            w = numpy_helper.to_array(initializers[producers[weight].input[0]]).T  # a tied head: the table [N, K]
        else:
            continue
        if w.dtype != np.float32 or w.ndim != 2 or w.shape[1] % 16:
            continue
        k, n = w.shape
        panels = np.ascontiguousarray(w.reshape(k, n // 16, 16).transpose(1, 0, 2))  # [N/16, K, 16]
        name = weight + "_panels"
        added.append(numpy_helper.from_array(panels, name))
        node.op_type, node.domain = "PanelMatMul", DOMAIN
        node.input[1] = name
    model.graph.initializer.extend(added)
    model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    return len(added)


def session(directory, graph, tmp, lib, threads, panels):
    model = onnx.load(os.path.join(directory, graph))
    graph_ab.unfold_fp16_weights(model)
    if panels:
        print(f"PanelMatMul nodes: {to_panels(model)}")
    path = os.path.join(tmp, graph)
    onnx.save(model, path, save_as_external_data=True, location=graph + "_data")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.register_custom_ops_library(lib)
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--lib", required=True, help="libspecula_kernels.so, built from engine/src/main/native")
    parser.add_argument("--graph", default="model_packed.onnx")
    parser.add_argument("--k", default="1,2,4,8")
    parser.add_argument("--past", type=int, default=64)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--swap", action="store_true", help="the panel graph's session first")
    parser.add_argument("--only", choices=["MatMul", "PanelMatMul"],
                        help="one session alone (compare such runs process against process)")
    args = parser.parse_args()
    with open(os.path.join(args.model_dir, "config.json")) as f:
        config = json.load(f)
    order = [("MatMul", False), ("PanelMatMul", True)]
    if args.swap:
        order.reverse()
    if args.only:
        order = [entry for entry in order if entry[0] == args.only]
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for i, (label, panels) in enumerate(order):
            os.makedirs(os.path.join(tmp, str(i)))
            sessions[label] = session(args.model_dir, args.graph, os.path.join(tmp, str(i)), args.lib, args.threads,
                                      panels)
        for k in (int(x) for x in args.k.split(",")):
            feeds = graph_ab.feeds(next(iter(sessions.values())), config, k, args.past, np.random.default_rng(k))
            logits = {label: s.run(["logits"], feeds)[0] for label, s in sessions.items()}
            diff = float(np.abs(logits["MatMul"] - logits["PanelMatMul"]).max()) if len(logits) == 2 else None
            times = {label: [] for label in sessions}
            for s in sessions.values():
                for _ in range(10):
                    s.run(None, feeds)
            for _ in range(args.calls):
                for label, s in sessions.items():
                    start = time.perf_counter()
                    s.run(None, feeds)
                    times[label].append(time.perf_counter() - start)
            medians = [(label, statistics.median(times[label]) * 1e3) for label in sessions]
            if len(medians) == 1:
                print(f"past {args.past} k {k}: {medians[0][0]} {medians[0][1]:.3f} ms "
                      f"(ONNX Runtime threads {args.threads})")
                continue
            (first, a), (second, b) = medians
            print(f"past {args.past} k {k}: {first} {a:.3f} ms, {second} {b:.3f} ms, second / first {b / a:.3f}; "
                  f"largest logit difference {diff:.2e}")


if __name__ == "__main__":
    main()
