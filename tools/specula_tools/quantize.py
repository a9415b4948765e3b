"""``quantize``: weight-only quantization of an exported model directory; activations stay float32.

    python -m specula_tools quantize IN_DIR OUT_DIR --scheme int4-b32|int4-b32-a8|int4-b32-sym-a8|int4-b128|int4-b128-a8|int8|int8-a8|int8-b32-sym-a8|int8-b128-a8|fp32|dynamic-int8
        [--packed-graph PATH] [--no-check] [--float-embedding]
    python -m specula_tools quantize agree REFERENCE_DIR DIR... --prompts FILE.jsonl [--new-tokens 64]

Schemes (each constant MatMul weight; other weights are stored as in IN_DIR):

- ``int4-b32``, ``int4-b128``: ONNX Runtime's ``com.microsoft`` ``MatMulNBits``, 4 bits, blocks of 32 or 128 along
  K, asymmetric (one float32 scale and one 4-bit zero point per block), written by
  ``onnxruntime.quantization.matmul_nbits_quantizer`` with ``accuracy_level`` unset (0): the CPU kernel computes
  in float32 on the dequantized weights. ``accuracy_level`` 4 would quantize the activations to int8 per block
  inside the kernel: that is ``int4-b32-a8``.
- ``int4-b32-a8``: the same weights with ``accuracy_level`` 4: the kernel quantizes each row's activations to int8
  per block and multiplies int8 by int4, as llama.cpp's Q4_0 does, several times faster than ``int4-b32`` for
  several rows. Each row is still computed on its own (rows of one call agree exactly with the same rows in calls
  of other sizes), except in a call of ONE token: ONNX Runtime's one-row paths differ in the last bits, which the
  int8 rounding of activations magnifies (0.7 in the logits, measured at the 0.5B-class body). So the graphs get
  the metadata ``specula.min_call_tokens = 2``, and the engine never calls such a target with fewer than two
  tokens: a step with nothing to verify proposes one token anyway, and prefill chunks never leave one token
  alone. Every call then takes the multi-row path, and decoding is as exact as with float activations (the
  check below compares calls of 5 and of 2 tokens).
- ``int4-b128-a8``: ``int4-b128``'s weights with ``accuracy_level`` 4, under the same two-token rule: fewer
  float scale steps per row than blocks of 32 (on the embedded target, calls of 2 to 5 tokens took 0.77-0.83x the
  time of ``int4-b32-a8``'s), at some cost in agreement with the float model (docs/models.md). With blocks of 64
  or more ONNX Runtime computes rows two at a time and the last row of an odd call alone, a little differently,
  which the next layers' int8 rounding magnifies (up to 0.03 in the embedded target's logits); so its graphs also
  get ``specula.call_tokens_multiple = 2``: the engine makes every call carry an even number of tokens, and the
  check compares one 6-token call with 3 two-token calls in turn. (The engine's own 4-bit kernel, ``PanelMatMulQ4``,
  which runs the ``-a8`` 4-bit graphs by default, computes rows one by one: there the even rule goes and the
  two-token minimum stays, for the attention's one-row paths; in a packed graph, whose attention the engine runs on
  its own kernel too, the minimum goes as well.)
- ``int4-b32-sym-a8``: ``int4-b32-a8`` with symmetric blocks (a scale and no zero point, Q4_0's layout), under the
  same two-token rule: at the 0.5B-class body its calls took 0.77-0.92x the time of the asymmetric ones (on the
  small embedded target, the same time).
- ``int8``: the same ``MatMulNBits`` with ``bits=8`` (block 32). ONNX Runtime 1.29 has no fast CPU kernel for it
  with float activations (about 10x slower than ``int8-a8``).
- ``int8-a8``: 8-bit weights with int8 activations (``accuracy_level`` 4), under the same two-token rule as
  ``int4-b32-a8``: llama.cpp's Q8_0 arithmetic.
- ``int8-b32-sym-a8``: ``int8-a8`` with symmetric blocks (a scale and no zero point: llama.cpp's Q8_0 layout, its
  scale float32), under the same two-token rule. On the engine's 8-bit kernel (``PanelMatMulQ8``) its logits are
  ONNX Runtime's within 2.4e-6 on the llama fixture; the asymmetric 8-bit schemes differ from ONNX Runtime's
  kernel by its own activation rounding (0.06 there), both as far from the float32 model.
- ``int8-b128-a8``: ``int8-a8`` in blocks of 128, under ``int4-b128-a8``'s two rules (at least 2 tokens, an even
  number): at the 0.5B-class body its 2-token calls took 0.83x the time of ``int8-a8``'s. The lone last row of an
  odd call differs more than with 4 bits (up to 2.4 in that body's logits), so the even-call rule matters more.
- ``fp32``: no quantization; weights stored as float16 and cast inside the graph
  (``specula_tools.onnx_fp16_weights``) are written back as float32 initializers: the float baseline.
- ``dynamic-int8``: ``onnxruntime.quantization.quantize_dynamic`` (``DynamicQuantizeMatMul``, one activation
  scale per tensor). For comparison only: a row's logits depend on the other rows of the call, so speculative
  decoding with such a target is NOT lossless (``--check`` shows it).

The ``MatMulNBits`` schemes also store the token table (the embedding read by a ``Gather``; a tied output projection
gets its own transposed copy first, quantized as a MatMul weight) at 8 bits: ONNX Runtime's ``com.microsoft``
``GatherBlockQuantized``, asymmetric uint8 blocks of the scheme's block size along the hidden size, float32 scales,
8-bit zero points, each gathered row dequantized on its own (rows of a call stay independent). Left float32, it
would be the largest weight in the files of a quantized model with a real vocabulary (Qwen2.5-0.5B's 151,936 × 896:
545 MB of an 870 MB int4 model; 8 bits: 137 MB), while a token reads one row of it. llama.cpp keeps such a table at 8 bits
too (Q8_0 where Q6_K does not fit the row size). ``--float-embedding`` keeps it as in IN_DIR.

The graphs quantized are ``model.onnx`` and, when present, ``model_packed.onnx`` (or the graph given with
``--packed-graph``, written as ``OUT_DIR/model_packed.onnx``). Weights that a graph stores as float16 initializers
cast to float32 are first turned back into float32 (quantizing the cast output, not the float16 tensor). The
graphs' weights are written to ``OUT_DIR/model.onnx_data``; with two graphs it is one file that both reference
(``share-weights``), so load them by path. Every other file of IN_DIR (config, tokenizer, templates, ldlp.*) is
copied except ``reference.json`` (float outputs of the source checkpoint); ``export_info.json`` gets a ``quantization`` entry.

The check (on by default) runs each written graph with ONNX Runtime: after a 12-token prefill it compares the
logits of one 5-row call with those of 5 single-row calls over the same past. Speculative verification relies on
these being equal. They are equal up to float summation order: ONNX Runtime's kernels reduce in a different order
for one row than for several (attention's softmax over a longer masked row, MatMulNBits' one-row kernel). Measured
with random weights at SmolLM2-135M's size (max |logit| 22): float32 2e-4, int8 8e-4, int4 (block 32) 2e-3, i.e.
1e-5 to 1e-4 of the logits' range; greedy output can then differ from plain decoding only where the two best
logits are that close. Rows that depend on each other through the values give differences of 1e-2 of the range
and more (dynamic int8: the activations' scale is computed over all rows; MatMulNBits accuracy_level 4: 0.5 here).
The check prints the largest difference and fails above 1e-3 × max(1, max |logit|).
"""
import argparse
import json
import logging
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .onnx_fp16_weights import store_as_fp16

SCHEMES = {
    "int4-b32": dict(bits=4, block_size=32),
    "int4-b32-a8": dict(bits=4, block_size=32, accuracy_level=4, min_call_tokens=2),
    "int4-b128": dict(bits=4, block_size=128),
    "int4-b128-a8": dict(bits=4, block_size=128, accuracy_level=4, min_call_tokens=2, call_tokens_multiple=2),
    "int4-b32-sym-a8": dict(bits=4, block_size=32, accuracy_level=4, min_call_tokens=2, symmetric=True),
    "int8": dict(bits=8, block_size=32),
    "int8-a8": dict(bits=8, block_size=32, accuracy_level=4, min_call_tokens=2),
    "int8-b32-sym-a8": dict(bits=8, block_size=32, accuracy_level=4, min_call_tokens=2, symmetric=True),
    "int8-b128-a8": dict(bits=8, block_size=128, accuracy_level=4, min_call_tokens=2, call_tokens_multiple=2),
    "fp32": None,
    "dynamic-int8": None,
}
GRAPHS = ("model.onnx", "model_packed.onnx")
STORAGE = {
    "int4-b32": "MatMul weights 4-bit (MatMulNBits, block 32, float32 scales, 4-bit zero points, float32 compute); "
                "other weights as in the source",
    "int4-b32-a8": "MatMul weights 4-bit (MatMulNBits, block 32, float32 scales, 4-bit zero points) computed with "
                   "int8 activations (accuracy_level 4); every call must carry at least 2 tokens "
                   "(specula.min_call_tokens); other weights as in the source",
    "int4-b128": "MatMul weights 4-bit (MatMulNBits, block 128, float32 scales, 4-bit zero points, float32 "
                 "compute); other weights as in the source",
    "int4-b128-a8": "MatMul weights 4-bit (MatMulNBits, block 128, float32 scales, 4-bit zero points) computed with "
                    "int8 activations (accuracy_level 4); every call must carry at least 2 tokens "
                    "(specula.min_call_tokens), and an even number of them (specula.call_tokens_multiple); other "
                    "weights as in the source",
    "int4-b32-sym-a8": "MatMul weights 4-bit (MatMulNBits, block 32, float32 scales, symmetric: no zero points, as "
                       "llama.cpp's Q4_0) computed with int8 activations (accuracy_level 4); every call must carry "
                       "at least 2 tokens (specula.min_call_tokens); other weights as in the source",
    "int8": "MatMul weights 8-bit (MatMulNBits bits=8, block 32, float32 compute); other weights as in the source",
    "int8-a8": "MatMul weights 8-bit (MatMulNBits bits=8, block 32) computed with int8 activations "
               "(accuracy_level 4); every call must carry at least 2 tokens (specula.min_call_tokens); other "
               "weights as in the source",
    "int8-b32-sym-a8": "MatMul weights 8-bit (MatMulNBits bits=8, block 32, float32 scales, symmetric: no zero "
                       "points, as llama.cpp's Q8_0) computed with int8 activations (accuracy_level 4); every call "
                       "must carry at least 2 tokens (specula.min_call_tokens); other weights as in the source",
    "int8-b128-a8": "MatMul weights 8-bit (MatMulNBits bits=8, block 128) computed with int8 activations "
                    "(accuracy_level 4); every call must carry at least 2 tokens (specula.min_call_tokens), and an "
                    "even number of them (specula.call_tokens_multiple); other weights as in the source",
    "fp32": "float32 initializers; all compute float32",
    "dynamic-int8": "MatMul weights int8 with activations quantized per call (DynamicQuantizeMatMul): NOT lossless "
                    "for speculative decoding",
}
DATA_FILE = "model.onnx_data"
MIN_CALL_TOKENS = "specula.min_call_tokens"  # graph metadata: the fewest tokens a call may carry (the engine reads it)
# graph metadata: what every call's tokens must be a multiple of (MatMulNBits computing rows two at a time)
CALL_TOKENS_MULTIPLE = "specula.call_tokens_multiple"


def set_metadata(model, key, value):
    kept = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = key, value


def call_tokens(graph):
    """The graph's (specula.min_call_tokens, specula.call_tokens_multiple), 1 each when absent."""
    props = {p.key: p.value for p in onnx.load(graph, load_external_data=False).metadata_props}
    return int(props.get(MIN_CALL_TOKENS, "1")), int(props.get(CALL_TOKENS_MULTIPLE, "1"))


ROW_TOLERANCE = 1e-3  # of max(1, max |logit|): rounding-order differences are 1e-5..1e-4 of it


def unfold_fp16_weights(model):
    """Replaces Cast(float16 initializer) -> float32 by a float32 initializer named as the Cast's output.

    The inverse of ``onnx_fp16_weights``: the values are the float16-rounded ones, exactly as the graph computed
    with them. Returns the names of the weights unfolded."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    keep_nodes, new_inits, dropped, names = [], [], set(), set()
    for node in graph.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        source = inits.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        if source is not None and source.data_type == onnx.TensorProto.FLOAT16 and to == onnx.TensorProto.FLOAT:
            array = numpy_helper.to_array(source).astype(np.float32)
            new_inits.append(numpy_helper.from_array(array, node.output[0]))
            names.add(node.output[0])
            dropped.add(source.name)
            continue
        keep_nodes.append(node)
    used = {i for n in keep_nodes for i in n.input}
    kept = [t for t in graph.initializer if t.name not in dropped or t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    del graph.node[:]
    graph.node.extend(keep_nodes)
    return names


def refold_fp16_weights(model, names):
    """Stores the float32 initializers in ``names`` as float16 again, cast inside the graph (what IN_DIR did)."""
    store_as_fp16(model, lambda init: init.name in names)


def gemm_to_matmul(model):
    """Rewrites Gemm(A, B_const[, C]) with alpha = beta = 1 and transA = 0 as MatMul(A, B) [+ C], transposing B
    when transB = 1 (GPT-2's Conv1D exports as Gemm), so the weight-only quantizer sees a MatMul. Same values;
    returns the number of nodes rewritten."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes, count = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Gemm" or node.input[1] not in inits or attrs.get("transA", 0) \
                or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        name = node.input[1] + ("__t" if attrs.get("transB", 0) else "")
        if attrs.get("transB", 0) and name not in inits:
            inits[name] = numpy_helper.from_array(np.ascontiguousarray(weight.T), name)
            graph.initializer.append(inits[name])
        has_bias = len(node.input) > 2 and node.input[2]
        product = node.output[0] + "__matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], name=node.name + "__matmul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=node.name + "__bias"))
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return count


def transposed_weights_to_initializers(model):
    """Gives MatMul(A, Transpose(W_const)) its own transposed initializer W^T, so the weight-only quantizer sees a
    constant MatMul weight: a tied output projection (Qwen2.5, SmolLM2, Gemma) reads the embedding through a
    Transpose, which would otherwise stay float32 and be the largest matrix read per token. The embedding itself
    stays as it is for its Gather. Same values; returns the number of MatMuls rewired."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    count = 0
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        transpose = producers.get(node.input[1])
        if transpose is None or transpose.op_type != "Transpose" or transpose.input[0] not in inits:
            continue
        weight = numpy_helper.to_array(inits[transpose.input[0]])
        perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), [1, 0])
        if weight.ndim != 2 or perm != [1, 0]:
            continue
        name = transpose.input[0] + "__t"
        if name not in inits:
            inits[name] = numpy_helper.from_array(np.ascontiguousarray(weight.T), name)
            graph.initializer.append(inits[name])
        node.input[1] = name
        count += 1
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [n for n in graph.node if n.op_type != "Transpose" or any(out in used for out in n.output)]
    del graph.node[:]
    graph.node.extend(kept)
    return count


EMBEDDING_BITS = 8

EMBEDDING_MIN_ROWS = 256
"""A Gather table with fewer rows is a small constant, not a token table."""


def block_quantize_rows(table, bits, block_size):
    """Asymmetric block quantization of a [rows, cols] float table along cols: (q uint8 [rows, cols] unpacked,
    scales float32 [rows, blocks], zero points uint8 [rows, blocks]); zero stays exactly representable."""
    rows, cols = table.shape
    blocks = -(-cols // block_size)
    top = (1 << bits) - 1
    q = np.empty((rows, cols), np.uint8)
    scales = np.empty((rows, blocks), np.float32)
    zero_points = np.empty((rows, blocks), np.uint8)
    for start in range(0, rows, 8192):  # bounded temporaries for a 152k-row table
        chunk = np.zeros((min(8192, rows - start), blocks * block_size), np.float32)
        chunk[:, :cols] = table[start:start + chunk.shape[0]]
        by_block = chunk.reshape(chunk.shape[0], blocks, block_size)
        low = np.minimum(by_block.min(-1), 0)
        high = np.maximum(by_block.max(-1), 0)
        scale = ((high - low) / top).astype(np.float32)
        scale[scale == 0] = 1
        zero = np.clip(np.round(-low / scale), 0, top)
        values = np.clip(np.round(by_block / scale[..., None]) + zero[..., None], 0, top)
        q[start:start + chunk.shape[0]] = values.reshape(chunk.shape[0], -1)[:, :cols].astype(np.uint8)
        scales[start:start + chunk.shape[0]] = scale
        zero_points[start:start + chunk.shape[0]] = zero.astype(np.uint8)
    return q, scales, zero_points


def quantize_embedding_gathers(model, block_size, bits=EMBEDDING_BITS):
    """Replaces each Gather over a constant float token table ([rows >= 256, H], gathered along rows, read by that
    Gather alone) with ``com.microsoft.GatherBlockQuantized`` over the table quantized by ``block_quantize_rows``.
    Returns the names of the tables replaced."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    readers = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    replaced = []
    nodes = []
    for node in graph.node:
        table = inits.get(node.input[0]) if node.op_type == "Gather" and node.domain in ("", "ai.onnx") else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if (table is None or axis != 0 or len(table.dims) != 2 or table.dims[0] < EMBEDDING_MIN_ROWS
                or table.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
                or readers[node.input[0]] != 1 or any(o.name == node.input[0] for o in graph.output)):
            nodes.append(node)
            continue
        q, scales, zero_points = block_quantize_rows(numpy_helper.to_array(table).astype(np.float32), bits,
                                                     block_size)
        name = node.input[0]
        graph.initializer.extend([numpy_helper.from_array(q, name + "__q"),
                                  numpy_helper.from_array(scales, name + "__scales"),
                                  numpy_helper.from_array(zero_points, name + "__zero_points")])
        nodes.append(helper.make_node("GatherBlockQuantized",
                                      [name + "__q", node.input[1], name + "__scales", name + "__zero_points"],
                                      # named after the table: a fused graph's nodes have no names
                                      list(node.output), name=name + "__quantized", domain="com.microsoft",
                                      bits=bits, block_size=block_size, gather_axis=0, quantize_axis=1))
        replaced.append(name)
    if replaced:
        gone = set(replaced)
        kept = [t for t in graph.initializer if t.name not in gone]
        del graph.initializer[:]
        graph.initializer.extend(kept)
        del graph.node[:]
        graph.node.extend(nodes)
        if not any(o.domain == "com.microsoft" for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return replaced


def _matmul_weights(model):
    inits = {t.name for t in model.graph.initializer}
    return {n.input[1] for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits}


def is_feature_head(model):
    """Whether a graph is a feature head (a GRIFFIN head: it reads the target's ``hidden_states``): it only proposes
    drafts, which the target verifies, so the two-token rule and the row check below are not needed for it."""
    return any(i.name == "hidden_states" for i in model.graph.input)


def quantize_graph(src, dst, scheme, log=print, float_embedding=False):
    """Quantizes the graph at ``src`` (external data beside it is read) and writes ``dst`` (weights in ``dst``_data);
    the token table too (8 bits) for the MatMulNBits schemes unless ``float_embedding``."""
    model = onnx.load(src)
    head = is_feature_head(model)
    unfolded = unfold_fp16_weights(model)
    gemms = gemm_to_matmul(model) if scheme != "fp32" else 0
    untied = transposed_weights_to_initializers(model) if scheme not in ("fp32", "dynamic-int8") else 0
    # float32 weights the quantizer leaves alone (e.g. the embedding) keep the input's float16 storage
    refold = set() if scheme == "fp32" else unfolded - _matmul_weights(model)
    tables = []
    if scheme == "fp32":
        count = 0
    elif scheme == "dynamic-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic
        with tempfile.TemporaryDirectory() as tmp:
            plain = os.path.join(tmp, "in.onnx")
            onnx.save(model, plain, save_as_external_data=True, location="in.onnx_data")
            quantize_dynamic(plain, dst, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
            model = onnx.load(dst)
        count = sum(1 for n in model.graph.node if n.op_type in ("DynamicQuantizeMatMul", "MatMulInteger"))
    else:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
        settings = SCHEMES[scheme]
        quantizer = MatMulNBitsQuantizer(model, bits=settings["bits"], block_size=settings["block_size"],
                                         is_symmetric=settings.get("symmetric", False),
                                         accuracy_level=settings.get("accuracy_level"),
                                         op_types_to_quantize=("MatMul",))
        quantizer.process()
        model = quantizer.model.model
        count = sum(1 for n in model.graph.node if n.op_type == "MatMulNBits")
        wanted = settings.get("accuracy_level") or 0
        bad = [n.name for n in model.graph.node if n.op_type == "MatMulNBits"
               and next((a.i for a in n.attribute if a.name == "accuracy_level"), 0) not in (wanted,)
               + ((0, 1) if wanted == 0 else ())]
        if bad:
            raise SystemExit(f"quantize: MatMulNBits with another accuracy_level than {wanted}: {bad[:3]}")
        if settings.get("min_call_tokens") and not head:
            set_metadata(model, MIN_CALL_TOKENS, str(settings["min_call_tokens"]))
        if settings.get("call_tokens_multiple") and not head:
            set_metadata(model, CALL_TOKENS_MULTIPLE, str(settings["call_tokens_multiple"]))
        tables = [] if float_embedding else quantize_embedding_gathers(model, settings["block_size"])
    if count == 0 and scheme != "fp32":
        raise SystemExit(f"quantize: {src} has no MatMul with a constant float weight to quantize (weights in other "
                         "ops, or computed at run time); nothing written")
    if refold:
        present = {t.name for t in model.graph.initializer}
        refold_fp16_weights(model, refold & present)
    # external data and a check by path: models over 2 GB cannot be serialized or checked in memory
    onnx.save(model, dst, save_as_external_data=True, location=os.path.basename(dst) + "_data", size_threshold=1024)
    onnx.checker.check_model(dst)
    log(f"quantize: {src}: {len(unfolded)} float16-stored weights unfolded, {gemms} Gemm(s) rewritten as MatMul, "
        f"{untied} MatMul(s) on a transposed weight (a tied output projection) given their own, {count} MatMul(s) quantized ({scheme}), "
        f"{len(tables)} token table(s) stored at {EMBEDDING_BITS} bits (GatherBlockQuantized), "
        f"{len(refold & {t.name for t in model.graph.initializer}) if refold else 0} other weight(s) kept as float16")
    return count


def write(in_dir, out_dir, scheme, packed_graph=None, check=True, log=print, float_embedding=False):
    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    if scheme not in SCHEMES:
        raise SystemExit(f"quantize: unknown --scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    in_dir = os.path.abspath(in_dir)
    out_dir = os.path.abspath(out_dir)
    if in_dir == out_dir:
        raise SystemExit("quantize: OUT_DIR must differ from IN_DIR (the input is read while the output is written)")
    sources = {"model.onnx": os.path.join(in_dir, "model.onnx")}
    if not os.path.isfile(sources["model.onnx"]):
        raise SystemExit(f"quantize: {sources['model.onnx']} does not exist: IN_DIR must be an exported model directory")
    if packed_graph:
        sources["model_packed.onnx"] = os.path.abspath(packed_graph)
    elif os.path.isfile(os.path.join(in_dir, "model_packed.onnx")):
        sources["model_packed.onnx"] = os.path.join(in_dir, "model_packed.onnx")
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(in_dir):
        path = os.path.join(in_dir, name)
        if name in GRAPHS or name == "reference.json" or name.startswith("model.onnx_data") or name.startswith("model_packed.onnx_data") \
                or not os.path.isfile(path):
            continue
        shutil.copy2(path, os.path.join(out_dir, name))
    for stale in GRAPHS + (DATA_FILE, "model_packed.onnx_data"):
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))

    with tempfile.TemporaryDirectory() as tmp:
        written = {}
        for name, src in sources.items():
            written[name] = os.path.join(tmp, name)
            quantize_graph(src, written[name], scheme, log=log, float_embedding=float_embedding)
        if len(written) == 2:
            from specula_tools.share_weights import share
            share(written["model.onnx"], written["model_packed.onnx"], out_dir, data_name=DATA_FILE,
                  allow_unshared=True, log=log)
        else:
            model = onnx.load(written["model.onnx"])
            onnx.save(model, os.path.join(out_dir, "model.onnx"), save_as_external_data=True, location=DATA_FILE,
                      size_threshold=1024)

    info_path = os.path.join(out_dir, "export_info.json")
    info = {}
    if os.path.isfile(info_path):
        with open(info_path) as f:
            info = json.load(f)
    if "model_packed.onnx" in sources and "graphs" not in info:
        # the packed graph came from another export: say which input each graph takes, as share-weights users do
        packed_info_path = os.path.join(os.path.dirname(sources["model_packed.onnx"]), "export_info.json")
        packed_info = {}
        if os.path.isfile(packed_info_path):
            with open(packed_info_path) as f:
                packed_info = json.load(f)
        keys = ("packed", "mask_input", "attention_bias_masked_value")
        info["graphs"] = {"model.onnx": {k: info.get(k) for k in keys},
                          "model_packed.onnx": {k: packed_info.get(k) for k in keys}}
    info["quantization"] = _describe(scheme, sources, in_dir)
    head = is_feature_head(onnx.load(sources["model.onnx"], load_external_data=False))
    if head and "min_call_tokens" in info["quantization"]:
        # a feature head only proposes drafts: a call of any size will do
        info["quantization"]["min_call_tokens"] = 1
        info["quantization"]["feature_head"] = "drafts only: no two-token rule, no row check"
    nbits = SCHEMES[scheme] is not None
    if nbits:
        info["quantization"]["token_table"] = (
            "as in the input (--float-embedding)" if float_embedding else
            f"{EMBEDDING_BITS}-bit blocks of {SCHEMES[scheme]['block_size']} (com.microsoft.GatherBlockQuantized, "
            "float32 scales, 8-bit zero points)")
    storage = STORAGE[scheme]
    if head:
        storage = (storage.replace(", and an even number of them (specula.call_tokens_multiple)", "")
                   .replace("; every call must carry at least 2 tokens (specula.min_call_tokens)", ""))
    info["weights_storage"] = storage + (
        ("; the token table " + ("as in the source" if float_embedding else f"{EMBEDDING_BITS}-bit (GatherBlockQuantized)"))
        if nbits else "") + (
        "; both graphs read their weights from model.onnx_data (share-weights), so load them by path"
        if len(sources) == 2 else "")
    info["weights_file"] = DATA_FILE
    with open(info_path, "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")

    sizes = {name: os.path.getsize(os.path.join(out_dir, name)) for name in GRAPHS + (DATA_FILE,)
             if os.path.exists(os.path.join(out_dir, name))}
    log(f"quantize: {scheme} -> {out_dir}: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items())
        + f", graphs + weights {sum(sizes.values()) / 1e6:.2f} MB")
    results = {}
    if check and head:
        log("quantize: check skipped: model.onnx is a feature head (it reads hidden_states); its rows only propose "
            "drafts, which the target verifies, so they need not match across call sizes (nor does it need the "
            "two-token rule)")
        check = False
    if check:
        for name in sources:
            diff, scale = row_independence(os.path.join(out_dir, name), with_scale=True)
            results[name] = diff
            limit = ROW_TOLERANCE * max(1.0, scale)
            least, multiple = call_tokens(os.path.join(out_dir, name))
            rows = 6 if multiple == 2 else 5
            calls = ("3 two-token calls in turn" if multiple == 2 else "5 single-row calls" if least <= 1
                     else "5 two-token calls")
            log(f"quantize: check {name}: max |logits({rows}-row call) - logits({calls})| = {diff:.3g} "
                f"(max |logit| {scale:.3g}, limit {limit:.3g})")
            if diff > limit and scheme != "dynamic-int8":
                raise SystemExit(f"quantize: {name}: rows of one call depend on each other (max diff {diff:.3g} > "
                                 f"{limit:.3g}); speculative verification would not compute what single steps "
                                 "compute")
    return results


def _describe(scheme, sources, in_dir):
    graphs = {name: os.path.relpath(src, in_dir) for name, src in sources.items()}
    s = SCHEMES[scheme]
    if s is not None:  # MatMulNBits; accuracy_level 4: int8 activations, under the call-size rules
        int8_activations = s.get("accuracy_level", 0) == 4
        info = dict(scheme=scheme, op="com.microsoft.MatMulNBits", bits=s["bits"], block_size=s["block_size"],
                    symmetric=s.get("symmetric", False), accuracy_level=s.get("accuracy_level", 0),
                    activations="int8 per block, per row (accuracy_level 4)" if int8_activations else "float32")
        if int8_activations:
            info.update(min_call_tokens=s["min_call_tokens"], call_tokens_multiple=s.get("call_tokens_multiple", 1))
        info.update(lossless_verification=True,
                    quantized="constant MatMul weights (lm_head included); other weights stored as in the input",
                    tool="python -m specula_tools quantize", sources=graphs)
        return info
    if scheme == "fp32":
        return dict(scheme=scheme, activations="float32", lossless_verification=True,
                    quantized="none: float16-stored weights written back as float32", tool="python -m specula_tools "
                    "quantize", sources=graphs)
    return dict(scheme=scheme, op="com.microsoft.DynamicQuantizeMatMul", bits=8, activations="int8, one dynamic "
                "scale per tensor per call", lossless_verification=False, tool="python -m specula_tools quantize "
                "(onnxruntime.quantization.quantize_dynamic)", sources=graphs)


def _feeds(session, ids, past, past_len, kv_shapes):
    """Inputs of one call of a single sequence: ids [1, n] after past_len cached positions."""
    n = len(ids)
    feeds = {"input_ids": np.array([ids], dtype=np.int64),
             "position_ids": np.arange(past_len, past_len + n, dtype=np.int64)[None, :]}
    names = {i.name for i in session.get_inputs()}
    if "attention_mask" in names:
        feeds["attention_mask"] = np.ones((1, past_len + n), dtype=np.int64)
    if "attention_bias" in names:
        bias = np.zeros((1, 1, n, past_len + n), dtype=np.float32)
        for r in range(n):
            bias[0, 0, r, past_len + r + 1:] = -1e9
        feeds["attention_bias"] = bias
    if "logits_to_keep" in names:
        feeds["logits_to_keep"] = np.array(n, dtype=np.int64)
    for name, shape in kv_shapes.items():
        feeds[name] = past[name] if past is not None else np.zeros(shape, dtype=np.float32)
    return feeds


def row_independence(graph, prefill=12, rows=5, seed=3, with_scale=False):
    """Largest |difference| between the logits of one ``rows``-row call and of ``rows`` single-row calls (and, with
    ``with_scale``, the largest |logit| of the call). A graph whose calls must carry a multiple of 2 tokens
    (``specula.call_tokens_multiple``) is checked with a call of ``rows`` + 1 rows."""
    least, multiple = call_tokens(graph)
    rows += (multiple - rows % multiple) % multiple
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    kv_shapes = {}
    for i in session.get_inputs():
        if i.name.startswith("past_key_values."):
            kv_shapes[i.name] = [1, i.shape[1], 0, i.shape[3]]
    vocab = session.get_outputs()[0].shape[-1]
    vocab = vocab if isinstance(vocab, int) else 500
    rng = np.random.default_rng(seed)
    ids = [int(x) for x in rng.integers(1, min(vocab, 500), prefill + rows)]
    out_names = [o.name for o in session.get_outputs()]

    def run(chunk, past, past_len):
        outputs = dict(zip(out_names, session.run(None, _feeds(session, chunk, past, past_len, kv_shapes))))
        present = {k.replace("present.", "past_key_values."): v for k, v in outputs.items() if k.startswith("present.")}
        return outputs["logits"][0], present

    _, past = run(ids[:prefill], None, 0)
    together, _ = run(ids[prefill:], past, prefill)
    together = together[-rows:]
    single, step_past = [], past
    least = max(least, multiple)
    least += (multiple - least % multiple) % multiple
    for r in range(rows):
        if multiple > 1:
            # rows two at a time: calls of `least` tokens one after another, each over the past the ones before
            # wrote (a past written by an odd call would differ itself)
            if r % least == 0:
                group, step_past = run(ids[prefill + r:prefill + r + least], step_past, prefill + r)
            logits = group[:r % least + 1]
        elif least <= 1:
            logits, step_past = run([ids[prefill + r]], step_past, prefill + r)
        else:
            # the row as the last of a call of `least` tokens, over the past before them
            start = prefill + r - (least - 1)
            _, before = run(ids[:start], None, 0)
            logits, _ = run(ids[start:prefill + r + 1], before, start)
        single.append(logits[-1])
    diff = float(np.max(np.abs(together - np.stack(single))))
    return (diff, float(np.abs(together).max())) if with_scale else diff


def agreement(reference_dir, model_dirs, prompts_file, new_tokens=64, limit=24, log=print):
    """Greedy agreement with a reference model: the reference decodes each prompt greedily (``new_tokens``, no
    early stop); each other model then reads prompt + that continuation in one call, and the share of positions
    whose argmax equals the reference's token is its agreement (teacher-forced top-1, like the acceptance of a
    γ = ∞ draft). Also the mean length of the prefix each model reproduces when decoding on its own."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    def session(directory):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        return ort.InferenceSession(os.path.join(directory, "model.onnx"), options,
                                    providers=["CPUExecutionProvider"])

    def call(sess, ids, past, past_len, kv):
        names = [o.name for o in sess.get_outputs()]
        out = dict(zip(names, sess.run(None, _feeds(sess, ids, past, past_len, kv))))
        return out["logits"][0], {k.replace("present.", "past_key_values."): v for k, v in out.items()
                                  if k.startswith("present.")}

    def kv_shapes(sess):
        return {i.name: [1, i.shape[1], 0, i.shape[3]] for i in sess.get_inputs()
                if i.name.startswith("past_key_values.")}

    def greedy(sess, prompt):
        kv = kv_shapes(sess)
        logits, past = call(sess, prompt, None, 0, kv)
        out = []
        for _ in range(new_tokens):
            out.append(int(np.argmax(logits[-1])))
            logits, past = call(sess, [out[-1]], past, len(prompt) + len(out) - 1, kv)
        return out

    tokenizer = Tokenizer.from_file(os.path.join(reference_dir, "tokenizer.json"))
    with open(prompts_file) as f:
        texts = [json.loads(line)["prompt"] for line in f if line.strip()][:limit]
    prompts = [tokenizer.encode(t).ids for t in texts]
    ref = session(reference_dir)
    paths = [greedy(ref, p) for p in prompts]
    results = {}
    for directory in model_dirs:
        sess = session(directory)
        equal = total = 0
        prefix = 0
        for prompt, path in zip(prompts, paths):
            logits, _ = call(sess, prompt + path[:-1], None, 0, kv_shapes(sess))
            predicted = np.argmax(logits[-len(path):], axis=-1)
            equal += int(np.sum(predicted == np.array(path)))
            total += len(path)
            own = greedy(sess, prompt)
            prefix += next((i for i, (a, b) in enumerate(zip(own, path)) if a != b), len(path))
        results[directory] = dict(agreement=equal / total, mean_identical_prefix=prefix / len(prompts))
        log(f"agree: {directory}: {equal}/{total} = {equal / total:.4f} of greedy tokens equal to "
            f"{reference_dir}'s (teacher-forced); identical free-running prefix {prefix / len(prompts):.1f} of "
            f"{new_tokens} tokens on average")
    return results


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "agree":
        parser = argparse.ArgumentParser(prog="specula_tools quantize agree",
                                         description="Greedy agreement of models with a reference model.")
        parser.add_argument("reference")
        parser.add_argument("models", nargs="+")
        parser.add_argument("--prompts", required=True, help="JSONL with a 'prompt' field per line")
        parser.add_argument("--new-tokens", type=int, default=64)
        parser.add_argument("--limit", type=int, default=24, help="number of prompts (default %(default)s)")
        a = parser.parse_args(argv[1:])
        agreement(a.reference, a.models, a.prompts, new_tokens=a.new_tokens, limit=a.limit)
        return 0
    parser = argparse.ArgumentParser(prog="specula_tools quantize",
                                     description="Weight-only quantization of an exported model directory.")
    parser.add_argument("in_dir", help="an exported model directory (model.onnx, config.json, tokenizer.json, ...)")
    parser.add_argument("out_dir", help="the directory to write (a loadable model directory)")
    parser.add_argument("--scheme", required=True, choices=list(SCHEMES))
    parser.add_argument("--packed-graph", help="an --packed export of the same checkpoint, written as "
                        "OUT_DIR/model_packed.onnx (default: IN_DIR/model_packed.onnx when present)")
    parser.add_argument("--no-check", action="store_true", help="skip the row-independence check")
    parser.add_argument("--float-embedding", action="store_true",
                        help="keep the token table (the Gather's embedding) as in IN_DIR instead of 8 bits "
                        "(MatMulNBits schemes)")
    parser.add_argument("--check-only", action="store_true",
                        help="only run the row-independence check on IN_DIR's graphs (OUT_DIR is ignored)")
    args = parser.parse_args(argv)
    if args.check_only:
        for name in GRAPHS:
            path = os.path.join(args.in_dir, name)
            if os.path.isfile(path):
                print(f"quantize: check {path}: max |logits(5-row call) - logits(5 single-row calls)| = "
                      f"{row_independence(path):.3g}")
        return 0
    write(args.in_dir, args.out_dir, args.scheme, packed_graph=args.packed_graph, check=not args.no_check,
          float_embedding=args.float_embedding)
    return 0


if __name__ == "__main__":
    sys.exit(main())
