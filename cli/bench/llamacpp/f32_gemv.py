"""float32 matrix-vector products streamed from memory: ONNX Runtime's kernels against a row-dot GEMV.

    python cli/bench/llamacpp/f32_gemv.py [--hidden 384] [--intermediate 1536] [--matrices 24] [--trials 12]
                                          [--calls 100] [--threads 1]

One decode token of a float32 decoder reads every weight once, one row of activations against each matrix. This
chains ``matrices`` products, alternately [hidden, intermediate] and [intermediate, hidden] (the embedded target's
MLP shapes by default; 896 / 4864 for the 0.5B-class body), more bytes than the caches hold, and times each way of
computing them, the ways taking turns, ``trials`` x ``calls`` chains:
- ONNX Runtime ``MatMul`` x[1, K] @ W[K, N] (the exported graphs' form; ONNX Runtime prepacks W for MLAS's SGEMM);
- ONNX Runtime ``Gemm`` with transB = 1 on W stored [N, K] (prepacked too);
- ONNX Runtime ``MatMul`` W[N, K] @ x[K, 1] (the weights as the left operand, which MLAS does not pack);
- numpy x @ W[K, N] and numpy W[N, K] @ x: a row-dot GEMV (BLAS sgemv), each output the dot product of one
  contiguous weight row with x, which is how llama.cpp's float32 kernels read a weight.
It prints the median and best bandwidth of each (weight bytes / time). A benchmark: nothing runs it in CI.
"""
import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def session(weights, form, threads):
    """One graph chaining every product in ``form``: 'matmul', 'gemm-transb' or 'weights-left'."""
    nodes, initializers, previous = [], [], "x"
    for i, w in enumerate(weights):  # w: [K, N]
        name, out = f"w{i}", f"y{i}"
        if form == "matmul":
            initializers.append(numpy_helper.from_array(w, name))
            nodes.append(helper.make_node("MatMul", [previous, name], [out]))
        elif form == "gemm-transb":
            initializers.append(numpy_helper.from_array(np.ascontiguousarray(w.T), name))
            nodes.append(helper.make_node("Gemm", [previous, name], [out], transB=1))
        else:
            initializers.append(numpy_helper.from_array(np.ascontiguousarray(w.T), name))
            nodes.append(helper.make_node("MatMul", [name, previous], [out]))
        previous = out
    width = weights[0].shape[0]
    shape = [width, 1] if form == "weights-left" else [1, width]
    graph = helper.make_graph(nodes, form, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, shape)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    run = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    return lambda: run.run(None, {"x": x})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--intermediate", type=int, default=1536)
    parser.add_argument("--matrices", type=int, default=24)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    a = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    shapes = [(a.hidden, a.intermediate) if i % 2 == 0 else (a.intermediate, a.hidden) for i in range(a.matrices)]
    weights = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in shapes]  # each [K, N]
    rows = [np.ascontiguousarray(w.T) for w in weights]  # each [N, K]
    weight_bytes = sum(w.nbytes for w in weights)
    x = rng.standard_normal((1, a.hidden)).astype(np.float32)

    def numpy_x_w():
        y = x
        for w in weights:
            y = y @ w

    def numpy_row_dot():
        y = x[0]
        for w in rows:
            y = w @ y

    ways = {
        "ONNX Runtime MatMul x @ W[K, N]": session(weights, "matmul", a.threads),
        "ONNX Runtime Gemm transB, W[N, K]": session(weights, "gemm-transb", a.threads),
        "ONNX Runtime MatMul W[N, K] @ x": session(weights, "weights-left", a.threads),
        "numpy x @ W[K, N]": numpy_x_w,
        "numpy W[N, K] @ x (row dot)": numpy_row_dot,
    }
    seconds = {name: [] for name in ways}
    for _ in range(a.trials):
        for name, chain in ways.items():
            start = time.perf_counter()
            for _ in range(a.calls):
                chain()
            seconds[name].append((time.perf_counter() - start) / a.calls)
    print(f"{a.matrices} float32 matrices of {a.hidden} x {a.intermediate}, {weight_bytes / 1e6:.1f} MB a chain, "
          f"{a.threads} thread(s), ONNX Runtime {ort.__version__}, {a.trials} trials x {a.calls} chains, ways taking "
          "turns")
    print("| way | median ms a chain | median GB/s | best GB/s |")
    print("|---|---:|---:|---:|")
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"| {name} | {median * 1e3:.3f} | {weight_bytes / median / 1e9:.1f} | "
              f"{weight_bytes / min(times) / 1e9:.1f} |")


if __name__ == "__main__":
    main()
