"""Store an ONNX model's large float32 weights as float16, cast back to float32 inside the graph.

    python -m specula_tools.onnx_fp16_weights IN.onnx OUT.onnx [--min-elements 1024]

The file shrinks by half while every computation stays float32: ONNX Runtime folds the Cast of each constant
weight at session creation, so the model runs as an fp32 model whose weights were rounded to fp16. Unlike
ONNX Runtime's dynamic int8 quantization, which quantizes activations with one scale per tensor, a row's result
does not depend on the other rows of the same call: verifying γ + 1 tokens in one call computes what γ + 1
single steps compute, which lossless speculative decoding relies on.
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def store_as_fp16(model, select):
    """Stores the float32 initializers that ``select(initializer)`` picks as float16, each cast back to float32 by
    a Cast at the head of the graph under its old name; returns how many."""
    graph = model.graph
    kept, casts = [], []
    for init in graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and select(init):
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "__to_fp32"))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return len(casts)


# Tables that are not weights, kept float32: the fused graph's rotary cos/sin caches (export_fused.py).
NOT_WEIGHTS = ("rotary.",)


def convert(src, dst, min_elements=1024):
    model = onnx.load(src)
    converted = store_as_fp16(model, lambda init: np.prod(init.dims) >= min_elements
                              and not init.name.startswith(NOT_WEIGHTS))
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return converted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--min-elements", type=int, default=1024)
    args = parser.parse_args(argv)
    print(f"onnx_fp16_weights: {convert(args.src, args.dst, args.min_elements)} weights stored as float16 -> {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
