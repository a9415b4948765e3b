"""What a small node and the attention cost inside ONNX Runtime, apart from the weights' MatMuls.

    python cli/bench/llamacpp/node_cost.py chain [--threads 1]
    python cli/bench/llamacpp/node_cost.py strip GRAPH --op RotaryEmbedding [--past 64] [--rounds 40]
    python cli/bench/llamacpp/node_cost.py attention [--heads 14 --kv-heads 2 --head-dim 64] [--slots 64,256,1024,4096]
    python cli/bench/llamacpp/node_cost.py matmuls GRAPH [--tokens 1] [--past 64] [--rounds 40]

chain: one kind of node (Add, Mul, SkipSimplifiedLayerNormalization, RotaryEmbedding, QuickGelu; a row of 384
  values, 1-2 tokens) 400 times in a row, its cost a node; then the same nodes each after a MatMul that streams a
  [384, 384] float32 weight (590 KB), against the MatMuls alone: what the node costs once the weights have pushed
  ONNX Runtime's code and data out of the core's caches, as in a decoder (40 and 400 MatMuls: weights in L3, and
  past it).
strip: a decoder graph (e.g. model_packed.onnx of an export) against itself without every node of one op type
  (each such node's consumers read its first input instead: the logits are wrong, the time is what the nodes
  cost), one two-token call over a `past`-token cache on each in turn, `rounds` x 10 calls; medians.
attention: one GroupQueryAttention per layer, 20 layers, one new token over a cache of `slots` tokens written in
  place (past and present bound to one buffer, as the engine runs it), its time a layer.
matmuls: a float32 decoder graph against a graph of its weights' MatMuls alone (the same weights, each fed
  `tokens` rows of its width from a graph input), calls of `tokens` new tokens taking turns: what the rest of the
  graph adds to the float32 kernels.
One process, one thread unless --threads. A benchmark: nothing runs it in CI.
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
import onnx.numpy_helper
import onnxruntime as ort
from onnx import TensorProto, helper

MS = "com.microsoft"
HIDDEN = 384


def session(model, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # unused initializers of the stripped graphs are expected
    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def median_us(run, rounds=7, calls=100):
    for _ in range(20):
        run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def graph(nodes, initializers, x_shape):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(MS, 1)])
    model.ir_version = 9
    return model


def small_node(kind, x, out):
    """One node of `kind` reading x [1, s, 384], writing out (the initializers are small_inputs())."""
    if kind == "Add":
        return helper.make_node("Add", [x, "row"], [out])
    if kind == "Mul":
        return helper.make_node("Mul", [x, "row"], [out])
    if kind == "SkipSimplifiedLayerNormalization":
        return helper.make_node(kind, [x, "zeros", "row"], [out], domain=MS, epsilon=1e-5)
    if kind == "RotaryEmbedding":
        return helper.make_node(kind, [x, "positions", "cos", "sin"], [out], domain=MS, num_heads=6, interleaved=0)
    if kind == "QuickGelu":
        return helper.make_node(kind, [x], [out], domain=MS, alpha=1.0)
    raise ValueError(kind)


def small_inputs(rng, tokens):
    return [helper.make_tensor("row", TensorProto.FLOAT, [HIDDEN], np.full(HIDDEN, 0.999, np.float32)),
            helper.make_tensor("zeros", TensorProto.FLOAT, [1, tokens, HIDDEN], np.zeros(tokens * HIDDEN, np.float32)),
            helper.make_tensor("positions", TensorProto.INT64, [1, tokens], list(range(64, 64 + tokens))),
            helper.make_tensor("cos", TensorProto.FLOAT, [2048, 32], rng.random((2048, 32), np.float32)),
            helper.make_tensor("sin", TensorProto.FLOAT, [2048, 32], rng.random((2048, 32), np.float32))]


def chain(args):
    rng = np.random.default_rng(0)
    kinds = ("Add", "Mul", "SkipSimplifiedLayerNormalization", "RotaryEmbedding", "QuickGelu")
    tokens = 2
    x = rng.random((1, tokens, HIDDEN), np.float32)
    print(f"a node alone, 400 in a row ([1, {tokens}, {HIDDEN}], {args.threads} thread(s)):")
    for kind in kinds:
        nodes, previous = [], "x"
        for i in range(400):
            nodes.append(small_node(kind, previous, f"n{i}"))
            previous = f"n{i}"
        nodes.append(helper.make_node("Identity", [previous], ["y"]))
        s = session(graph(nodes, small_inputs(rng, tokens), [1, tokens, HIDDEN]), args.threads)
        print(f"  {kind:34s} {median_us(lambda: s.run(None, {'x': x})) / 400:6.2f} us a node")
    print("after a MatMul of a [384, 384] float32 weight each, against the MatMuls alone:")
    for count in (40, 400):
        weights = [helper.make_tensor(f"w{i}", TensorProto.FLOAT, [HIDDEN, HIDDEN],
                                      rng.standard_normal((HIDDEN, HIDDEN), np.float32) * 0.05)
                   for i in range(count)]
        for kind in kinds:
            sessions = []
            for with_node in (False, True):
                nodes, previous = [], "x"
                for i in range(count):
                    nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"m{i}"]))
                    previous = f"m{i}"
                    if with_node:
                        nodes.append(small_node(kind, previous, f"n{i}"))
                        previous = f"n{i}"
                nodes.append(helper.make_node("Identity", [previous], ["y"]))
                sessions.append(session(graph(nodes, small_inputs(rng, tokens) + weights, [1, tokens, HIDDEN]),
                                        args.threads))
            alone, mixed = alternate(sessions, [{"x": x}] * 2, rounds=30, calls=5)
            print(f"  {count:3d} MatMuls, {kind:34s} {(mixed - alone) / count:6.2f} us a node "
                  f"({alone:.0f} -> {mixed:.0f} us)")


def alternate(sessions, feeds, rounds, calls):
    """Medians of the sessions' call times (us), each session with its feeds, taking turns session by session."""
    times = [[] for _ in sessions]
    for s, f in zip(sessions, feeds):
        for _ in range(10):
            s.run(None, f)
    for _ in range(rounds):
        for s, f, acc in zip(sessions, feeds, times):
            start = time.perf_counter()
            for _ in range(calls):
                s.run(None, f)
            acc.append((time.perf_counter() - start) / calls * 1e6)
    return [statistics.median(t) for t in times]


def strip(args):
    model = onnx.load(args.graph, load_external_data=False)
    replaced = {}
    kept = []
    for node in model.graph.node:
        if node.op_type == args.op:
            replaced[node.output[0]] = node.input[0]
        else:
            kept.append(node)
    if not replaced:
        raise SystemExit(f"node_cost: {args.graph} has no {args.op} node")

    def source(name):
        while name in replaced:
            name = replaced[name]
        return name

    for node in kept:
        for i, name in enumerate(node.input):
            node.input[i] = source(name)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    # beside the original, so that its external weights (model.onnx_data) resolve
    with tempfile.NamedTemporaryFile(suffix=".onnx", dir=os.path.dirname(os.path.abspath(args.graph))) as stripped:
        onnx.save(model, stripped.name)
        sessions = [session(args.graph, args.threads), session(stripped.name, args.threads)]
        feeds = decoder_feeds(sessions[0], args.graph, args.past, tokens=2)
        full, without = alternate(sessions, [feeds] * 2, rounds=args.rounds, calls=10)
    print(f"{args.graph}: {len(replaced)} {args.op} nodes; a two-token call over {args.past} tokens "
          f"{full:.0f} us, without them {without:.0f} us: {(full - without) / len(replaced):.2f} us a node")


def decoder_feeds(s, graph, past, tokens):
    """A call of `tokens` new tokens over a random `past`-token cache for an export's graph (graph_ab.py's feeds,
    the model's config.json read from the graph's directory)."""
    from graph_ab import feeds  # cli/bench/llamacpp, beside this script

    with open(os.path.join(os.path.dirname(os.path.abspath(graph)), "config.json")) as f:
        config = json.load(f)
    return feeds(s, config, tokens, past, np.random.default_rng(0))


def matmuls(args):
    from graph_ab import unfold_fp16_weights  # tools/specula_tools/quantize.py, on graph_ab's path

    model = onnx.load(args.graph)  # with its external weights
    unfold_fp16_weights(model)  # float16-stored weights as the float32 values the graph computes with
    weights = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:  # a tied output projection: MatMul(x, Transpose(token table))
        if node.op_type == "Transpose" and node.input[0] in weights:
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            array = np.transpose(onnx.numpy_helper.to_array(weights[node.input[0]]), perm)
            weights[node.output[0]] = onnx.numpy_helper.from_array(np.ascontiguousarray(array), node.output[0])
    nodes, inputs, initializers, outputs = [], {}, [], []
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights:
            continue
        weight = weights[node.input[1]]
        width = weight.dims[0]
        if width not in inputs:
            inputs[width] = helper.make_tensor_value_info(f"x{width}", TensorProto.FLOAT, [1, args.tokens, width])
        initializers.append(weight)
        out = f"y{len(nodes)}"
        nodes.append(helper.make_node("MatMul", [f"x{width}", weight.name], [out]))
        outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
    if not nodes:
        raise SystemExit(f"node_cost: {args.graph} has no float32 MatMul on a weight (a quantized graph?)")
    alone = helper.make_model(helper.make_graph(nodes, "matmuls", list(inputs.values()), outputs, initializers),
                              opset_imports=[helper.make_opsetid("", 18)])
    alone.ir_version = 9
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        whole = os.path.join(tmp, "whole.onnx")
        onnx.save(model, whole, save_as_external_data=True, location="whole.onnx_data")
        sessions = [session(whole, args.threads), session(alone, args.threads)]
        feeds = [decoder_feeds(sessions[0], args.graph, args.past, tokens=args.tokens),
                 {f"x{w}": rng.random((1, args.tokens, w), np.float32) for w in inputs}]
        full, kernels = alternate(sessions, feeds, rounds=args.rounds, calls=10)
    size = sum(np.prod(w.dims) * 4 for w in initializers) / 1e6
    print(f"{args.graph}: a call of {args.tokens} token(s) over {args.past} {full:.0f} us; its {len(nodes)} MatMuls "
          f"alone ({size:.1f} MB of float32 weights) {kernels:.0f} us, {size / kernels * 1e3:.1f} GB/s; the rest "
          f"{full - kernels:.0f} us")


def attention(args):
    n, kv, d, layers = args.heads, args.kv_heads, args.head_dim, 20
    inputs = [helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 1, n * d]),
              helper.make_tensor_value_info("k", TensorProto.FLOAT, [1, 1, kv * d]),
              helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 1, kv * d]),
              helper.make_tensor_value_info("seqlens", TensorProto.INT32, [1]),
              helper.make_tensor_value_info("total", TensorProto.INT32, []),
              helper.make_tensor_value_info("bias", TensorProto.FLOAT, [1, 1, 1, None])]
    nodes, outputs = [], []
    for layer in range(layers):
        for role in ("k", "v"):
            inputs.append(helper.make_tensor_value_info(f"past_{role}{layer}", TensorProto.FLOAT, [1, kv, None, d]))
        nodes.append(helper.make_node(
            "GroupQueryAttention", ["q", "k", "v", f"past_k{layer}", f"past_v{layer}", "seqlens", "total", "", "", "",
                                    "bias"], [f"out{layer}", f"present_k{layer}", f"present_v{layer}"],
            domain=MS, num_heads=n, kv_num_heads=kv, scale=d ** -0.5))
        outputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                    for name in (f"out{layer}", f"present_k{layer}", f"present_v{layer}")]
    model = helper.make_model(helper.make_graph(nodes, "attention", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(MS, 1)])
    model.ir_version = 9
    s = session(model, args.threads)
    rng = np.random.default_rng(0)
    print(f"GroupQueryAttention, {n} heads over {kv} kv heads of {d}, one new token, cache written in place:")
    for slots in (int(v) for v in args.slots.split(",")):
        binding = s.io_binding()
        small = {"q": rng.random((1, 1, n * d), np.float32), "k": rng.random((1, 1, kv * d), np.float32),
                 "v": rng.random((1, 1, kv * d), np.float32), "seqlens": np.array([slots], np.int32),
                 "total": np.array(slots + 1, np.int32), "bias": np.zeros((1, 1, 1, slots + 1), np.float32)}
        for name, value in small.items():
            binding.bind_cpu_input(name, value)
        buffers = []  # [1, kv, capacity, d], past and present one buffer
        for layer in range(layers):
            for role in ("k", "v"):
                buffer = ort.OrtValue.ortvalue_from_numpy(rng.random((1, kv, slots + 64, d), np.float32))
                buffers.append(buffer)
                binding.bind_ortvalue_input(f"past_{role}{layer}", buffer)
                binding.bind_ortvalue_output(f"present_{role}{layer}", buffer)
            binding.bind_output(f"out{layer}")
        per_layer = median_us(lambda: s.run_with_iobinding(binding), rounds=5, calls=20) / layers
        print(f"  {slots:6d} slots: {per_layer:8.1f} us a layer")


def main(argv):
    p = argparse.ArgumentParser(prog="node_cost.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("chain")
    c.add_argument("--threads", type=int, default=1)
    st = sub.add_parser("strip")
    st.add_argument("graph")
    st.add_argument("--op", required=True)
    st.add_argument("--past", type=int, default=64)
    st.add_argument("--rounds", type=int, default=40)
    st.add_argument("--threads", type=int, default=1)
    a = sub.add_parser("attention")
    a.add_argument("--heads", type=int, default=14)
    a.add_argument("--kv-heads", type=int, default=2)
    a.add_argument("--head-dim", type=int, default=64)
    a.add_argument("--slots", default="64,256,1024,4096")
    a.add_argument("--threads", type=int, default=1)
    mm = sub.add_parser("matmuls")
    mm.add_argument("graph")
    mm.add_argument("--tokens", type=int, default=1)
    mm.add_argument("--past", type=int, default=64)
    mm.add_argument("--rounds", type=int, default=40)
    mm.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    {"chain": chain, "strip": strip, "attention": attention, "matmuls": matmuls}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
