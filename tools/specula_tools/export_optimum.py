"""``export-optimum``: a decoder export in the layout Optimum and onnx-community publish, built without Optimum.

    python -m specula_tools export-optimum MODEL_DIR OUT_DIR [--merged] [--fp16] [--name model.onnx] [--no-verify]

Optimum is not in the wheel mirror, so this writes such an export itself, the way Optimum builds one: the model is
called through transformers' own mask path (a 2D ``attention_mask``; causality keyed on the number of cached
tokens), not through Specula's own 4D mask, with Optimum's input/output names and file placement:

    OUT_DIR/config.json, generation_config.json, tokenizer.json, tokenizer_config.json, chat_template.jinja
    OUT_DIR/onnx/model.onnx            (or --name, e.g. model_fp16.onnx; model.onnx_data beside it when large)

| name | type | shape |
|---|---|---|
| input_ids | int64 | [batch_size, sequence_length] |
| attention_mask | int64 | [batch_size, past_sequence_length + sequence_length] |
| position_ids | int64 | [batch_size, sequence_length] |
| past_key_values.{i}.key/.value | float32/float16 | [batch_size, kv_heads, past_sequence_length, head_dim] |
| use_cache_branch | bool | [1], only with --merged |
| logits (output) | float32/float16 | [batch_size, sequence_length, vocab] |
| present.{i}.key/.value (output) | as past | [batch_size, kv_heads, past_sequence_length + sequence_length, head_dim] |

``--merged`` writes Optimum's merged decoder: one graph whose ``If`` on ``use_cache_branch`` runs the
without-past decoder (false: the past inputs are ignored) or the with-past one (true), the two branches sharing
one set of weights. Verification (unless ``--no-verify``) runs ONNX Runtime against transformers: greedy ids
from an empty past (20 tokens on 3 prompts, both branches when merged), and a 5-token step over a 12-token past.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

from specula_tools.export_core import geometry, load
from specula_tools.onnx_verify import _generate, _greedy_margins, _prompt_ids


class OptimumStyleDecoder(torch.nn.Module):
    """(input_ids, attention_mask, position_ids[, *past]) -> (logits, *present), through transformers' masks."""

    def __init__(self, model, with_past, length_only_mask=False):
        super().__init__()
        self.model = model
        self.with_past = with_past
        self.length_only_mask = length_only_mask
        self.num_layers = geometry(model.config)[0]

    def forward(self, input_ids, attention_mask, position_ids, *past):
        from transformers import DynamicCache

        if self.with_past:
            pairs = [(past[2 * i], past[2 * i + 1]) for i in range(self.num_layers)]
            cache = DynamicCache(ddp_cache_data=pairs, config=self.model.config)
        else:
            cache = DynamicCache(config=self.model.config)
        if self.length_only_mask:
            # what graphs that take only sequence lengths from the mask do (GroupQueryAttention's seqlens_k):
            # every slot up to the length is attended, masked holes included
            attention_mask = torch.ones_like(attention_mask)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True)
        result = [out.logits]
        for layer in out.past_key_values.layers:
            result += [layer.keys, layer.values]
        return tuple(result)


def _names(layers, with_past):
    inputs = ["input_ids", "attention_mask", "position_ids"]
    outputs = ["logits"]
    for i in range(layers):
        if with_past:
            inputs += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        outputs += [f"present.{i}.key", f"present.{i}.value"]
    return inputs, outputs


def _export(model, with_past, opset, length_only_mask=False):
    """One decoder graph (ModelProto), exported with torch.onnx's dynamo exporter."""
    from torch.export import Dim

    layers, kv_heads, head_dim, _ = geometry(model.config)
    dtype = next(model.parameters()).dtype
    vocab = model.config.get_text_config(decoder=True).vocab_size
    batch, seq, past_len = 2, 3, (4 if with_past else 0)
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (batch, seq), generator=g)
    mask = torch.ones((batch, past_len + seq), dtype=torch.int64)
    position_ids = (torch.arange(seq) + past_len).unsqueeze(0).expand(batch, seq).contiguous()
    past = []
    if with_past:
        for _ in range(2 * layers):
            past.append(torch.randn(batch, kv_heads, past_len, head_dim, generator=g).to(dtype))
    d_batch, d_seq = Dim("batch_size"), Dim("sequence_length")
    ds_ids = {0: d_batch, 1: d_seq}
    ds_mask = {0: d_batch, 1: Dim.AUTO}
    dynamic_shapes = [ds_ids, ds_mask, ds_ids]
    if with_past:
        d_past = Dim("past_sequence_length")
        dynamic_shapes.append(tuple({0: d_batch, 2: d_past} for _ in range(2 * layers)))
    in_names, out_names = _names(layers, with_past)
    wrapper = OptimumStyleDecoder(model, with_past, length_only_mask).eval()
    with torch.no_grad():
        program = torch.onnx.export(wrapper, (input_ids, mask, position_ids, *past), dynamo=True,
                                    input_names=in_names, output_names=out_names,
                                    dynamic_shapes=tuple(dynamic_shapes), opset_version=opset, optimize=True,
                                    external_data=False, verbose=False)
    proto = program.model_proto
    proto.ir_version = min(proto.ir_version, 10)
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.metadata_props[:]
    return proto


def _merge(without_past, with_past):
    """Optimum's merged decoder: If(use_cache_branch) over the two graphs, with one copy of shared weights.

    Initializers of equal content (whatever the exporter named them: it folds transposed weights into
    constants with per-graph names) are kept once at the top level; the rest stay inside their branch. Every
    other value name of a branch gets the branch's prefix, so that names cannot collide (ONNX names are global
    across a graph and its subgraphs, and the If node's outputs carry the plain names).
    """
    import onnx
    from onnx import helper, numpy_helper

    def key(tensor):
        return tensor.data_type, tuple(tensor.dims), numpy_helper.to_array(tensor).tobytes()

    by_content = {key(t): t for t in with_past.graph.initializer}
    shared = {}
    alias = {}  # a without-past initializer's name -> the equal with-past initializer's name
    for tensor in without_past.graph.initializer:
        twin = by_content.get(key(tensor))
        if twin is not None:
            shared[twin.name] = twin
            alias[tensor.name] = twin.name

    def branch(graph, prefix, name):
        rename = dict(alias) if graph is without_past.graph else {}
        for node in graph.node:
            for out in node.output:
                if out:
                    rename[out] = prefix + out
        for t in graph.initializer:
            if t.name not in shared and t.name not in rename:
                rename[t.name] = prefix + t.name
        nodes = []
        for node in graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = prefix + node.name if node.name else ""
            copy.input[:] = [rename.get(i, i) for i in node.input]
            copy.output[:] = [rename.get(o, o) for o in node.output]
            nodes.append(copy)
        local = []
        for t in graph.initializer:
            if rename.get(t.name, t.name) not in shared:
                copy = onnx.TensorProto()
                copy.CopyFrom(t)
                copy.name = rename[t.name]
                local.append(copy)
        outputs = []
        for vi in graph.output:
            copy = onnx.ValueInfoProto()
            copy.CopyFrom(vi)
            copy.name = rename.get(vi.name, vi.name)
            # Branch outputs may differ in their symbolic dims; the If output carries the general shape.
            if copy.type.tensor_type.HasField("shape"):
                copy.type.tensor_type.ClearField("shape")
            outputs.append(copy)
        return helper.make_graph(nodes, name, [], outputs, initializer=local)

    then_graph = branch(with_past.graph, "with_past/", "with_past")
    else_graph = branch(without_past.graph, "no_past/", "without_past")
    out_names = [vi.name for vi in with_past.graph.output]
    if_node = helper.make_node("If", ["use_cache_branch"], out_names, name="optimum::if",
                               then_branch=then_graph, else_branch=else_graph)
    use_cache = helper.make_tensor_value_info("use_cache_branch", onnx.TensorProto.BOOL, [1])
    graph = helper.make_graph([if_node], "merged_decoder", list(with_past.graph.input) + [use_cache],
                              list(with_past.graph.output), initializer=list(shared.values()))
    merged = helper.make_model(graph, opset_imports=with_past.opset_import, ir_version=with_past.ir_version)
    for f in with_past.functions:
        merged.functions.append(f)
    onnx.checker.check_model(merged)
    return merged


def _save(proto, path):
    import onnx

    for stale in (path, path + "_data"):
        if os.path.exists(stale):
            os.remove(stale)
    if proto.ByteSize() > 1_800_000_000:
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(path) + "_data", size_threshold=1024)
    else:
        onnx.save_model(proto, path)


def _side_files(model_dir, out_dir):
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "chat_template.jinja"):
        source = os.path.join(model_dir, name)
        if os.path.exists(source):
            shutil.copyfile(source, os.path.join(out_dir, name))


class _Session:
    """ONNX Runtime over an Optimum-layout graph; past as numpy arrays."""

    def __init__(self, path, layers, merged):
        import onnxruntime as ort

        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.layers = layers
        self.merged = merged
        self.past_dtype = np.float16 if any(i.type == "tensor(float16)" for i in self.session.get_inputs()
                                            if i.name.startswith("past_key_values")) else np.float32
        shape = [i.shape for i in self.session.get_inputs() if i.name == "past_key_values.0.key"]
        self.kv_heads, self.head_dim = (shape[0][1], shape[0][3]) if shape else (None, None)

    def run(self, ids, mask, positions, past, use_cache):
        feed = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
        for i in range(self.layers):
            feed[f"past_key_values.{i}.key"] = past[2 * i]
            feed[f"past_key_values.{i}.value"] = past[2 * i + 1]
        if self.merged:
            feed["use_cache_branch"] = np.array([use_cache])
        out = self.session.run(None, feed)
        return out[0].astype(np.float32), out[1:]


def greedy(session, tokens, n, use_cache_first=True):
    """n greedy ids from an empty past: the prompt in one call, then one token per call."""
    dtype = session.past_dtype
    past = [np.zeros((1, session.kv_heads, 0, session.head_dim), dtype) for _ in range(2 * session.layers)]
    new = np.array([tokens], dtype=np.int64)
    start = 0
    got = []
    for step in range(n):
        total = start + new.shape[1]
        logits, past = session.run(new, np.ones((1, total), np.int64), np.arange(start, total, dtype=np.int64)[None],
                                   past, use_cache_first if step == 0 else True)
        nxt = int(logits[0, -1].argmax())
        got.append(nxt)
        start = total
        new = np.array([[nxt]], dtype=np.int64)
    return got


def verify(path, model, tokenizer, merged, quiet=False):
    """Greedy ids vs transformers from an empty past, and a 5-token step over a 12-token past."""
    session = _Session(path, geometry(model.config)[0], merged)
    dtype = session.past_dtype
    report = {}
    prompts = ["def fibonacci(n):", "The quick brown fox", "import os\nimport sys\n"]
    branches = [False, True] if merged else [True]
    for use_cache_first in branches:
        for prompt in prompts:
            tokens = _prompt_ids(tokenizer, prompt)
            expected = _generate(model, tokens, 20)
            got = greedy(session, tokens, 20, use_cache_first)
            if got != expected:
                raise SystemExit(f"export-optimum: greedy ids differ on {prompt!r} (first step use_cache_branch="
                                 f"{use_cache_first}): ONNX {got} vs transformers {expected}")
        report[f"greedy_use_cache_first_{use_cache_first}"] = "exact"
    ids = tokenizer("class Stack:\n    def push(self, item):\n        self.items.append(item)",
                    return_tensors="pt").input_ids[:, :17]
    with torch.no_grad():
        first = model(input_ids=ids[:, :12], use_cache=True)
        full = model(input_ids=ids, use_cache=False).logits[0, 12:].float().numpy()
    past = []
    for layer in first.past_key_values.layers:
        past += [layer.keys.numpy().astype(dtype), layer.values.numpy().astype(dtype)]
    logits, _ = session.run(ids[:, 12:].numpy(), np.ones((1, 17), np.int64),
                            np.arange(12, 17, dtype=np.int64)[None], past, True)
    diff = float(np.abs(logits[0] - full).max())
    scale = max(1.0, float(np.abs(full).max()) / 10)
    limit = (5e-2 if dtype == np.float16 else 1e-3) * scale
    if diff > limit:
        raise SystemExit(f"export-optimum: 5-token step differs from transformers by {diff:.3g} (limit {limit:.3g})")
    report["step_max_abs_diff"] = diff
    if not quiet:
        print("export-optimum verify: " + json.dumps(report))
    return report


def export(model_dir, out_dir, merged=False, fp16=False, name=None, opset=18, check=True, length_only_mask=False):
    model, tokenizer = load(model_dir, fp16=fp16, attn_implementation="sdpa")
    onnx_dir = os.path.join(out_dir, "onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    name = name or ("model_fp16.onnx" if fp16 else "model.onnx")
    with_past = _export(model, with_past=True, opset=opset, length_only_mask=length_only_mask)
    proto = _merge(_export(model, with_past=False, opset=opset), with_past) if merged else with_past
    path = os.path.join(onnx_dir, name)
    _save(proto, path)
    _side_files(model_dir, out_dir)
    if check:
        verify(path, model, tokenizer, merged)
    return path


def build_fixtures(models_dir):
    """engine test fixtures: models/optimum-qwen2 (onnx/model.onnx) and models/optimum-qwen2-merged, with
    transformers' greedy ids (reference.json, the schema of `fixtures`' reference files), and models/extra-input
    (optimum-qwen2's graph with an input the engine does not feed)."""
    from specula_tools.fixtures import MAX_NEW_TOKENS

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        seed, hf_dir, model, cases = _seed_away_from_ties(tmp, 0)
        for name, merged in (("optimum-qwen2", False), ("optimum-qwen2-merged", True)):
            out_dir = os.path.join(models_dir, name)
            shutil.rmtree(out_dir, ignore_errors=True)
            path = export(hf_dir, out_dir, merged=merged)
            session = _Session(path, geometry(model.config)[0], merged)
            for case in cases:
                if greedy(session, case["prompt_ids"], MAX_NEW_TOKENS) != case["greedy_ids"]:
                    raise SystemExit(f"export-optimum: {name} greedy differs from transformers on {case['prompt']!r}")
            _write_reference(out_dir, seed, "optimum" + (" merged" if merged else ""),
                             "--merged" if merged else "", cases)
            print(f"export-optimum: fixture {out_dir} (seed {seed})")
        _extra_input_fixture(os.path.join(models_dir, "optimum-qwen2"), os.path.join(models_dir, "extra-input"))
        # a graph that reads only lengths from attention_mask: exact over a compact cache, wrong over holes; other
        # weights than the fixtures above, so that one drafting for it gets rejections
        seed, hf_dir, model, cases = _seed_away_from_ties(tmp, seed + 1)
        out_dir = os.path.join(models_dir, "length-only-mask")
        shutil.rmtree(out_dir, ignore_errors=True)
        path = export(hf_dir, out_dir, length_only_mask=True)
        session = _Session(path, geometry(model.config)[0], False)
        for case in cases:
            if greedy(session, case["prompt_ids"], MAX_NEW_TOKENS) != case["greedy_ids"]:
                raise SystemExit(f"export-optimum: length-only-mask greedy differs on {case['prompt']!r}")
        _write_reference(out_dir, seed, "optimum, attention from lengths only (holes visible)",
                         "--length-only-mask", cases)
        print(f"export-optimum: fixture {out_dir} (seed {seed})")


def _seed_away_from_ties(tmp, first_seed):
    """The first random Qwen2 from first_seed on whose greedy paths stay away from ties, with its reference cases."""
    from specula_tools.fixtures import MAX_NEW_TOKENS, MIN_MARGIN, MODEL_PROMPTS
    from specula_tools.make_random import make_random

    for seed in range(first_seed, first_seed + 12):
        hf_dir = os.path.join(tmp, f"qwen2-{seed}")
        make_random("qwen2", hf_dir, seed=seed)
        model, tokenizer = load(hf_dir)
        cases = []
        for prompt in MODEL_PROMPTS:
            ids = _prompt_ids(tokenizer, prompt)
            margin = min(_greedy_margins(model, ids, MAX_NEW_TOKENS))
            if margin < MIN_MARGIN[False]:
                break
            greedy_ids = _generate(model, ids, MAX_NEW_TOKENS)
            cases.append(dict(prompt=prompt, prompt_ids=ids, greedy_ids=greedy_ids,
                              text=tokenizer.decode(greedy_ids, skip_special_tokens=False),
                              min_margin=round(margin, 6)))
        if len(cases) == len(MODEL_PROMPTS):
            return seed, hf_dir, model, cases
    raise SystemExit(f"export-optimum: no seed in {first_seed}..{first_seed + 11} kept greedy paths away from ties")


def _write_reference(out_dir, seed, layout, options, cases):
    from specula_tools.fixtures import MAX_NEW_TOKENS

    with open(os.path.join(out_dir, "reference.json"), "w", encoding="utf-8") as fh:
        json.dump(dict(family="qwen2", layout=layout,
                       generator=f"specula_tools make-random --family qwen2 --seed {seed}; export-optimum {options}".strip(),
                       reference="transformers generate(do_sample=False) with eos_token_id=[]; ONNX Runtime greedy "
                                 "verified identical",
                       max_new_tokens=MAX_NEW_TOKENS, cases=cases), fh, indent=1, ensure_ascii=False)
        fh.write("\n")


def _extra_input_fixture(source_dir, out_dir):
    """optimum-qwen2 with one more graph input (token_type_ids, unused): a graph Specula must refuse by name."""
    import onnx
    from onnx import helper

    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(os.path.join(out_dir, "onnx"))
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(source_dir, name), os.path.join(out_dir, name))
    proto = onnx.load(os.path.join(source_dir, "onnx", "model.onnx"))
    proto.graph.input.append(helper.make_tensor_value_info("token_type_ids", onnx.TensorProto.INT64,
                                                           ["batch_size", "sequence_length"]))
    onnx.checker.check_model(proto)
    onnx.save_model(proto, os.path.join(out_dir, "onnx", "model.onnx"))
    print(f"export-optimum: fixture {out_dir}")


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m specula_tools export-optimum", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?")
    parser.add_argument("out_dir", nargs="?")
    parser.add_argument("--fixtures", metavar="MODELS_DIR",
                        help="instead: write the engine's optimum-qwen2 and optimum-qwen2-merged test fixtures there")
    parser.add_argument("--merged", action="store_true", help="one graph with a use_cache_branch input")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--name", help="file name under onnx/ (default model.onnx, or model_fp16.onnx)")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--length-only-mask", action="store_true",
                        help="for tests: attend every slot up to the mask's length, masked holes included, as graphs "
                             "that take only sequence lengths from the mask (GroupQueryAttention) do")
    args = parser.parse_args(argv)
    if args.fixtures:
        build_fixtures(args.fixtures)
        return 0
    if not args.model_dir or not args.out_dir:
        parser.error("MODEL_DIR and OUT_DIR are required (or --fixtures MODELS_DIR)")
    path = export(args.model_dir, args.out_dir, merged=args.merged, fp16=args.fp16, name=args.name,
                  opset=args.opset, check=not args.no_verify, length_only_mask=args.length_only_mask)
    print(f"export-optimum: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
