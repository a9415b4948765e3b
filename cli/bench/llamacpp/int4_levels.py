"""Why ONNX Runtime's int4 loses to llama.cpp's Q4_0, measured: MatMulNBits at accuracy_level 0 and 4.

    python cli/bench/llamacpp/int4_levels.py INT4_DIR [--threads 1] [--context 128] [--out DIR]

INT4_DIR is a ``specula_tools quantize --scheme int4-b32`` output (accuracy_level 0). For levels 0 and 4 (the same
weights; level 4 quantizes the activations to int8 per row and block and multiplies in integers, as Q4_0 does)
it prints, with ONNX Runtime's Python package:
- t(k), one call of k new tokens over a ``context``-token cache, k = 1, 2, 3, 5 (best of 3 x 5 calls);
- how the logits of the first token differ between a one-token call and calls of 2, 3 and 5 tokens, and between
  the several-token calls (lossless verification needs them equal);
- the same row comparison for one MatMulNBits alone, at each weight shape of the model.
A benchmark: nothing runs it in CI.
"""
import argparse
import os
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROWS = (1, 2, 3, 5)


def with_level(model_path, level, out_path):
    model = onnx.load(model_path, load_external_data=True)
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            kept = [a for a in node.attribute if a.name != "accuracy_level"]
            del node.attribute[:]
            node.attribute.extend(kept + [helper.make_attribute("accuracy_level", level)])
    onnx.save(model, out_path, save_as_external_data=True, location=os.path.basename(out_path) + ".data")
    return model


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def whole_model(path, threads, context):
    s = session(path, threads)
    names = [i.name for i in s.get_inputs()]
    kv_heads, head_dim = s.get_inputs()[-1].shape[1], s.get_inputs()[-1].shape[3]
    rng = np.random.default_rng(0)
    past = {n: rng.standard_normal((1, kv_heads, context, head_dim)).astype(np.float32)
            for n in names if n.startswith("past")}
    ids = rng.integers(0, 4096, (1, max(ROWS))).astype(np.int64)

    def feeds(k):
        f = dict(past)
        f["input_ids"] = ids[:, :k]
        f["position_ids"] = np.arange(context, context + k, dtype=np.int64)[None]
        if "attention_mask" in names:
            f["attention_mask"] = np.ones((1, context + k), np.int64)
        if "logits_to_keep" in names:
            f["logits_to_keep"] = np.array(k, np.int64)
        return f

    first = {k: s.run(["logits"], feeds(k))[0][0, 0] for k in ROWS}
    times = {}
    for k in ROWS:
        f = feeds(k)
        for _ in range(3):
            s.run(None, f)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(5):
                s.run(None, f)
            best = min(best, (time.perf_counter() - start) / 5)
        times[k] = best * 1e3
    one_vs_several = max(float(np.abs(first[k] - first[1]).max()) for k in ROWS[1:])
    among_several = max(float(np.abs(first[k] - first[2]).max()) for k in ROWS[2:])
    return times, one_vs_several, among_several, float(np.abs(first[1]).max())


def lone_matmul(model, level, threads):
    """Largest difference of row 0 between a one-row and a several-row call, over the model's weight shapes."""
    shapes = set()
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            attrs = {a.name: a.i for a in node.attribute}
            shapes.add((attrs["K"], attrs["N"]))
    rng = np.random.default_rng(1)
    worst = 0.0
    for k, n in sorted(shapes):
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        weight = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "one",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, k])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, n])],
                                  [numpy_helper.from_array(weight, "w")])
        plain = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        plain.ir_version = 10
        quantizer = MatMulNBitsQuantizer(plain, bits=4, block_size=32, is_symmetric=False, accuracy_level=level)
        quantizer.process()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        s = ort.InferenceSession(quantizer.model.model.SerializeToString(), options,
                                 providers=["CPUExecutionProvider"])
        x = rng.standard_normal((1, max(ROWS), k)).astype(np.float32)
        one = s.run(None, {"x": x[:, :1]})[0][0, 0]
        for rows in ROWS[1:]:
            worst = max(worst, float(np.abs(s.run(None, {"x": x[:, :rows]})[0][0, 0] - one).max()))
    return worst, sorted(shapes)


def main():
    import logging
    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("int4_dir")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--out", default=None, help="where the level-0/4 copies go (default: a temporary directory)")
    a = parser.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="int4-levels-")
    os.makedirs(out, exist_ok=True)
    for level in (0, 4):
        path = os.path.join(out, f"model-level{level}.onnx")
        model = with_level(os.path.join(a.int4_dir, "model.onnx"), level, path)
        times, one_vs_several, among_several, largest = whole_model(path, a.threads, a.context)
        lone, shapes = lone_matmul(model, level, a.threads)
        print(f"accuracy_level {level}: " + ", ".join(f"t({k}) {times[k]:.2f} ms" for k in ROWS))
        print(f"  first token's logits (max |logit| {largest:.3g}): one-token call vs 2/3/5 tokens "
              f"{one_vs_several:.3g}; among 2/3/5 tokens {among_several:.3g}")
        print(f"  one MatMulNBits alone, one row vs 2/3/5 rows, shapes {shapes}: {lone:.3g}")


if __name__ == "__main__":
    main()
