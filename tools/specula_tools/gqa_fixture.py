"""A test decoder built on ``com.microsoft`` ``GroupQueryAttention``, as ONNX Runtime GenAI's model builder emits.

    python -m specula_tools.gqa_fixture MODELS_DIR [--source-tokenizer DIR]

Writes ``MODELS_DIR/gqa``: a 2-layer random decoder (hidden 64, 4 heads over 2 KV heads, head dim 16, rotary
inside GroupQueryAttention, vocabulary and tokenizer of ``--source-tokenizer``, default ``MODELS_DIR/qwen2``) with
the model builder's interface: inputs ``input_ids``, ``attention_mask``, ``past_key_values.{i}.key/.value``
(no ``position_ids``), outputs ``logits`` and ``present.{i}.key/.value``. Like the model builder's graphs it derives
``seqlens_k`` (mask sum - 1) and ``total_sequence_length`` (mask length) from ``attention_mask``, so it takes
positions and visibility from lengths alone: masked slots in the middle of the past are attended. Its
``reference.json`` holds ONNX Runtime's greedy ids (prefill, then one token per call; there is no transformers
model to compare with), for the prompts of the ``fixtures`` command, from the first seed whose greedy paths stay
1e-3 away from ties.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, LAYERS, MLP, MAX_POSITIONS = 64, 4, 2, 16, 2, 128, 512


def build(vocab, seed):
    """The ModelProto of a random GQA decoder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = []

    def weight(name, shape, std=0.2):
        inits.append(numpy_helper.from_array(rng.normal(0, std, shape).astype(np.float32), name))
        return name

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    nodes = []

    def node(op, inputs, outputs, domain="", **attributes):
        nodes.append(helper.make_node(op, inputs, outputs, domain=domain, **attributes))
        return outputs[0]

    last_axis = const("axis_last", np.array([-1], np.int64))
    two = const("two", np.array(2.0, np.float32))
    epsilon = const("epsilon", np.array(1e-5, np.float32))

    def rms_norm(x, name):
        """x / sqrt(mean(x^2) + eps), as the ops ONNX Runtime fuses into SimplifiedLayerNormalization."""
        squared = node("Pow", [x, two], [name + ".squared"])
        mean = node("ReduceMean", [squared, last_axis], [name + ".mean"], keepdims=1)
        shifted = node("Add", [mean, epsilon], [name + ".shifted"])
        root = node("Sqrt", [shifted], [name + ".root"])
        return node("Div", [x, root], [name])

    embedding = weight("embed_tokens", (vocab, HIDDEN), 1.0)
    hidden = node("Gather", [embedding, "input_ids"], ["embedded"])
    # what the model builder derives from attention_mask
    mask_sum = node("ReduceSum", ["attention_mask", const("axis_1", np.array([1], np.int64))], ["mask_sum"],
                    keepdims=0)
    seqlens = node("Sub", [mask_sum, const("one", np.array(1, np.int64))], ["seqlens_k_64"])
    node("Cast", [seqlens], ["seqlens_k"], to=TensorProto.INT32)
    shape = node("Shape", ["attention_mask"], ["mask_shape"])
    total = node("Gather", [shape, const("index_1", np.array([1], np.int64))], ["total_64"], axis=0)
    node("Cast", [total], ["total_sequence_length"], to=TensorProto.INT32)
    inv = 1.0 / (10000 ** (np.arange(0, HEAD_DIM, 2) / HEAD_DIM))
    angles = np.outer(np.arange(MAX_POSITIONS), inv)
    cos = const("cos_cache", np.cos(angles).astype(np.float32))
    sin = const("sin_cache", np.sin(angles).astype(np.float32))
    for layer in range(LAYERS):
        p = f"layers.{layer}."
        normed = rms_norm(hidden, p + "normed1")
        q = node("MatMul", [normed, weight(p + "q", (HIDDEN, HEADS * HEAD_DIM))], [p + "q_out"])
        k = node("MatMul", [normed, weight(p + "k", (HIDDEN, KV_HEADS * HEAD_DIM))], [p + "k_out"])
        v = node("MatMul", [normed, weight(p + "v", (HIDDEN, KV_HEADS * HEAD_DIM))], [p + "v_out"])
        attention = node("GroupQueryAttention",
                         [q, k, v, f"past_key_values.{layer}.key", f"past_key_values.{layer}.value", "seqlens_k",
                          "total_sequence_length", cos, sin],
                         [p + "attention", f"present.{layer}.key", f"present.{layer}.value"],
                         domain="com.microsoft", num_heads=HEADS, kv_num_heads=KV_HEADS, do_rotary=1)
        projected = node("MatMul", [attention, weight(p + "o", (HEADS * HEAD_DIM, HIDDEN))], [p + "o_out"])
        hidden = node("Add", [hidden, projected], [p + "residual1"])
        normed = rms_norm(hidden, p + "normed2")
        up = node("MatMul", [normed, weight(p + "up", (HIDDEN, MLP))], [p + "up_out"])
        act = node("Relu", [up], [p + "act"])
        down = node("MatMul", [act, weight(p + "down", (MLP, HIDDEN), 0.1)], [p + "down_out"])
        hidden = node("Add", [hidden, down], [p + "residual2"])
    final = rms_norm(hidden, "final")
    node("MatMul", [final, weight("lm_head", (HIDDEN, vocab))], ["logits"])

    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                            ["batch_size", "total_sequence_length"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", vocab])]
    for layer in range(LAYERS):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{layer}.{kind}", TensorProto.FLOAT,
                                                        ["batch_size", KV_HEADS, "past_sequence_length", HEAD_DIM]))
            outputs.append(helper.make_tensor_value_info(f"present.{layer}.{kind}", TensorProto.FLOAT,
                                                         ["batch_size", KV_HEADS, "total_sequence_length",
                                                          HEAD_DIM]))
    graph = helper.make_graph(nodes, "gqa_decoder", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("com.microsoft", 1)], ir_version=10)
    onnx.checker.check_model(model)
    return model


def greedy(session, ids, n):
    """(greedy ids, smallest top1 - top2 logit margin) from an empty past, one token per call after the prompt."""
    past = {f"past_key_values.{i}.{kind}": np.zeros((1, KV_HEADS, 0, HEAD_DIM), np.float32)
            for i in range(LAYERS) for kind in ("key", "value")}
    new = np.array([ids], np.int64)
    total = 0
    out, margin = [], float("inf")
    for _ in range(n):
        total += new.shape[1]
        result = session.run(None, {"input_ids": new, "attention_mask": np.ones((1, total), np.int64), **past})
        logits = result[0][0, -1]
        top = np.sort(logits)[-2:]
        margin = min(margin, float(top[1] - top[0]))
        token = int(logits.argmax())
        out.append(token)
        for i in range(LAYERS):
            past[f"past_key_values.{i}.key"] = result[1 + 2 * i]
            past[f"past_key_values.{i}.value"] = result[2 + 2 * i]
        new = np.array([[token]], np.int64)
    return out, margin


def main(argv):
    import onnx
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from specula_tools.fixtures import MAX_NEW_TOKENS, MIN_MARGIN, MODEL_PROMPTS

    parser = argparse.ArgumentParser(prog="python -m specula_tools.gqa_fixture", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models_dir")
    parser.add_argument("--source-tokenizer", help="directory with config.json and tokenizer files (default: "
                                                   "MODELS_DIR/qwen2)")
    args = parser.parse_args(argv)
    source = args.source_tokenizer or os.path.join(args.models_dir, "qwen2")
    tokenizer = Tokenizer.from_file(os.path.join(source, "tokenizer.json"))
    with open(os.path.join(source, "config.json"), encoding="utf-8") as fh:
        vocab = json.load(fh)["vocab_size"]
    for seed in range(12):
        model = build(vocab, seed)
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        cases = []
        for prompt in MODEL_PROMPTS:
            ids = tokenizer.encode(prompt).ids
            out, margin = greedy(session, ids, MAX_NEW_TOKENS)
            if margin < MIN_MARGIN[False]:
                break
            cases.append(dict(prompt=prompt, prompt_ids=ids, greedy_ids=out, min_margin=round(margin, 6)))
        if len(cases) == len(MODEL_PROMPTS):
            break
    else:
        raise SystemExit("gqa_fixture: no seed in 0..11 kept greedy paths away from ties")
    out_dir = os.path.join(args.models_dir, "gqa")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    onnx.save_model(model, os.path.join(out_dir, "model.onnx"))
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(source, name)):
            shutil.copyfile(os.path.join(source, name), os.path.join(out_dir, name))
    with open(os.path.join(out_dir, "reference.json"), "w", encoding="utf-8") as fh:
        json.dump(dict(layout="GroupQueryAttention (ONNX Runtime GenAI model builder's interface)",
                       generator=f"python -m specula_tools.gqa_fixture (seed {seed})",
                       reference="ONNX Runtime 1.30 CPU greedy: the prompt in one call, then one token per call",
                       max_new_tokens=MAX_NEW_TOKENS, cases=cases), fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    print(f"gqa_fixture: {out_dir} (seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
