"""``share-weights``: write two ONNX graphs that reference ONE external weights file.

    python -m specula_tools share-weights A.onnx B.onnx --out DIR [--data-name model.onnx_data]
        [--names A_NAME B_NAME] [--min-bytes 1024] [--align 4096] [--allow-unshared]

Meant for two exports of the same checkpoint (e.g. the ``attention_mask`` and the ``--packed`` variant): their
weights are the same tensors, but the exporter names its folded constants differently in each graph (``val_132``
in one is ``val_41`` in the other), so initializers are matched by content (data type, shape and a SHA-256 of the
bytes), not by name. Every initializer of at least ``--min-bytes`` bytes is moved to ``DIR/<data-name>``, each
distinct content stored once (``--align`` bytes apart); both graphs keep their own initializer names and point at
the same ``location``/``offset``/``length``. Smaller constants (shapes, scalars) stay inside each graph. The graphs
themselves (nodes, inputs, outputs, opset, IR version, metadata) are not touched.

Writes ``DIR/<A's file name>`` and ``DIR/<B's file name>`` (or ``--names``). ONNX Runtime resolves ``location``
relative to the graph's directory, so load the graphs by path (a session created from bytes cannot find it).
By default every large content must occur in both models (otherwise it exits non-zero listing the tensors);
``--allow-unshared`` writes such tensors too (still once). After writing, both graphs are re-read with their
external data, checked with ``onnx.checker`` and compared initializer by initializer with the inputs.
"""
import argparse
import hashlib
import os
import sys

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper


def _tensor_bytes(tensor):
    """Raw little-endian bytes of an initializer, as ONNX external data stores them."""
    array = numpy_helper.to_array(tensor)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array).tobytes()


def _content_key(tensor, data):
    return (tensor.data_type, tuple(tensor.dims), hashlib.sha256(data).hexdigest())


def _large_initializers(model, min_bytes):
    """(initializer, bytes, key) for the main graph's initializers of at least min_bytes (strings excluded)."""
    out = []
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.STRING:
            continue
        data = _tensor_bytes(tensor)
        if len(data) >= min_bytes:
            out.append((tensor, data, _content_key(tensor, data)))
    return out


def _describe(entries):
    return ", ".join(f"{t.name} {onnx.TensorProto.DataType.Name(t.data_type)}{list(t.dims)}" for t, _, _ in entries)


def share(path_a, path_b, out_dir, data_name="model.onnx_data", names=None, min_bytes=1024, align=4096,
          allow_unshared=False, log=print):
    names = names or (os.path.basename(path_a), os.path.basename(path_b))
    if names[0] == names[1]:
        raise SystemExit(f"share-weights: both graphs would be written as {names[0]!r}; pass --names A_NAME B_NAME")
    if data_name in names:
        raise SystemExit(f"share-weights: the data file name {data_name!r} equals a graph's name")
    models = [onnx.load(path_a), onnx.load(path_b)]  # loads any external data the inputs already have
    originals = [{t.name: (t.data_type, tuple(t.dims), _tensor_bytes(t)) for t in m.graph.initializer} for m in models]
    for path, model in zip((path_a, path_b), models):
        if any(node.op_type in ("If", "Loop", "Scan") for node in model.graph.node):
            log(f"share-weights: note: {path} has subgraphs; only main-graph initializers are shared")
        big_constants = [n.name for n in model.graph.node if n.op_type == "Constant"
                         and any(a.t.ByteSize() >= min_bytes for a in n.attribute if a.HasField("t"))]
        if big_constants:
            log(f"share-weights: note: {path} has {len(big_constants)} large Constant nodes left inside the graph")
    large = [_large_initializers(m, min_bytes) for m in models]
    keys = [{k for _, _, k in entries} for entries in large]
    only = [[e for e in large[0] if e[2] not in keys[1]], [e for e in large[1] if e[2] not in keys[0]]]
    for path, entries in zip((path_a, path_b), only):
        if entries:
            message = f"{len(entries)} large initializer(s) of {path} have no equal in the other model: " \
                      f"{_describe(entries)}"
            if not allow_unshared:
                raise SystemExit("share-weights: " + message + " (--allow-unshared writes them anyway)")
            log("share-weights: warning: " + message)

    # One data file: each distinct content once, in A's initializer order then B's leftovers.
    os.makedirs(out_dir, exist_ok=True)
    data_path = os.path.join(out_dir, data_name)
    placed = {}  # key -> (offset, length)
    with open(data_path, "wb") as f:
        for entries in large:
            for _, data, key in entries:
                if key in placed:
                    continue
                offset = f.tell()
                if align > 1 and offset % align:
                    f.write(b"\0" * (align - offset % align))
                    offset = f.tell()
                f.write(data)
                placed[key] = (offset, len(data))
    data_size = os.path.getsize(data_path)

    # Point each graph's large initializers at the shared bytes; leave everything else as it is.
    written = []
    for model, entries, name in zip(models, large, names):
        for tensor, data, key in entries:
            offset, length = placed[key]
            for field in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"):
                tensor.ClearField(field)
            tensor.raw_data = data  # set_external_data insists on raw_data; dropped right after
            external_data_helper.set_external_data(tensor, location=data_name, offset=offset, length=length)
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
        path = os.path.join(out_dir, name)
        with open(path, "wb") as f:
            f.write(model.SerializeToString())
        written.append(path)

    # Re-read with external data and compare every initializer with the input it came from.
    for source, path, original in zip((path_a, path_b), written, originals):
        onnx.checker.check_model(path)
        reread = {t.name: (t.data_type, tuple(t.dims), _tensor_bytes(t)) for t in onnx.load(path).graph.initializer}
        if original != reread:
            bad = sorted(n for n in set(original) | set(reread) if original.get(n) != reread.get(n))
            raise SystemExit(f"share-weights: {path} does not read back as {source}: {bad[:10]}")

    shared = sum(1 for k in keys[0] if k in keys[1])
    log(f"share-weights: {len(placed)} distinct tensors ({shared} in both graphs) -> {data_path} "
        f"({data_size} bytes, {data_size / 1e6:.2f} MB)")
    for path, entries, model in zip(written, large, models):
        log(f"  {path}: {os.path.getsize(path)} bytes, {len(entries)} external initializers, "
            f"{len(model.graph.initializer) - len(entries)} inline; IR {model.ir_version}, opset "
            + ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import))
    renamed = {}
    by_key_a = {k: t.name for t, _, k in large[0]}
    for t, _, k in large[1]:
        if k in by_key_a and by_key_a[k] != t.name:
            renamed[t.name] = by_key_a[k]
    log(f"  names: {shared - len(renamed)} shared tensors have the same name in both graphs, "
        f"{len(renamed)} differ (each graph keeps its own names)")
    return dict(data_file=data_path, data_bytes=data_size, graphs=written, distinct=len(placed), shared=shared,
                renamed=renamed)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="specula_tools share-weights",
                                     description="Write two ONNX graphs that share one external weights file.")
    parser.add_argument("model_a")
    parser.add_argument("model_b")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--data-name", default="model.onnx_data", help="external data file name (default %(default)s)")
    parser.add_argument("--names", nargs=2, metavar=("A_NAME", "B_NAME"),
                        help="file names of the written graphs (default: the inputs' file names)")
    parser.add_argument("--min-bytes", type=int, default=1024,
                        help="initializers at least this large go to the data file (default %(default)s)")
    parser.add_argument("--align", type=int, default=4096, help="offset alignment in the data file (default %(default)s)")
    parser.add_argument("--allow-unshared", action="store_true",
                        help="also write large initializers that only one model has (still stored once)")
    a = parser.parse_args(argv)
    share(a.model_a, a.model_b, a.out, data_name=a.data_name, names=a.names, min_bytes=a.min_bytes, align=a.align,
          allow_unshared=a.allow_unshared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
