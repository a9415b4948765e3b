"""Core of ``export``: load a HF causal LM, wrap it with flat KV inputs/outputs, export with torch.onnx (dynamo)."""
import json
import os
import shutil
import tempfile

import torch

from . import export_families

MASK_MIN_FP32 = -1e9  # documented "masked" value for --packed attention_bias


# Models with more weight bytes than this are exported through an external data file (protobuf caps a message at 2 GB).
STREAM_WEIGHTS_ABOVE_BYTES = 1_800_000_000


def load(model_dir, fp16=False, attn_implementation=None):
    """Loads a supported family (others are refused by name: export_families.SUPPORTED)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    export_families.check_supported(config)
    if attn_implementation is None:
        attn_implementation = export_families.attn_implementation(config.model_type)
    dtype = torch.float16 if fp16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn_implementation)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model, tokenizer


def geometry(config):
    """(num_layers, kv_heads, head_dim, hidden) of a decoder config."""
    c = config.get_text_config(decoder=True)
    layers = c.num_hidden_layers
    heads = c.num_attention_heads
    kv_heads = getattr(c, "num_key_value_heads", None) or heads
    hidden = c.hidden_size
    head_dim = getattr(c, "head_dim", None) or hidden // heads
    return layers, kv_heads, head_dim, hidden


def io_names(num_layers, packed, with_hidden, logits_to_keep=False):
    inputs = ["input_ids", "attention_bias" if packed else "attention_mask", "position_ids"]
    if logits_to_keep:
        inputs.append("logits_to_keep")
    outputs = ["logits"]
    for i in range(num_layers):
        inputs += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        outputs += [f"present.{i}.key", f"present.{i}.value"]
    if with_hidden:
        outputs.append("last_hidden_state")
    return inputs, outputs


class DecoderWithPast(torch.nn.Module):
    """Flat-tensor wrapper: (input_ids, mask-or-bias, position_ids[, logits_to_keep], *past) -> (logits, *present[,
    hidden]).

    logits_to_keep (int64 scalar, k): only the last k positions' hidden states go through lm_head, so logits are
    [b, k, vocab] (an ONNX Slice with start -k: 0, or k >= s, keeps every position, as in transformers).

    The 4D additive mask is built here, so transformers' own mask logic (which keys causality on the number of
    cached tokens and may infer packing from position_ids) never runs: the 4D mask is passed through as-is.
    """

    def __init__(self, model, packed=False, with_hidden=False, logits_to_keep=False):
        super().__init__()
        self.logits_to_keep = logits_to_keep
        self.model = model
        self.base = model.base_model  # LlamaModel / Qwen2Model / GPT2Model: returns the post-final-norm state
        self.lm_head = model.get_output_embeddings()
        self.packed = packed
        self.with_hidden = with_hidden
        self.num_layers = geometry(model.config)[0]
        self.dtype = next(model.parameters()).dtype

    def forward(self, input_ids, mask, position_ids, *past):
        from transformers import DynamicCache

        keep = None
        if self.logits_to_keep:
            keep, past = past[0], past[1:]
        dtype = self.dtype
        neg = torch.finfo(dtype).min
        pairs = [(past[2 * i], past[2 * i + 1]) for i in range(self.num_layers)]
        sliding = export_families.has_sliding_layers(self.model.config)
        # Sliding-window families: plain (full-length) cache layers; the config would give sliding cache layers
        # that drop old slots, while the window is applied by the mask (export_families.window_visible).
        cache = DynamicCache(ddp_cache_data=pairs, config=None if sliding else self.model.config)
        if self.packed and sliding:
            visible = mask > MASK_MIN_FP32 / 2  # 0 = attend; -1e9 / -inf = masked
            bias = export_families.layer_masks(self.model.config, visible, self._bias)
        elif self.packed:
            # The bias is the whole mask; clamp so that -inf / -1e9 stay finite in the compute dtype.
            bias = mask.clamp(min=neg).to(dtype)
        else:
            past_len = past[0].shape[2]
            seq = input_ids.shape[1]
            q_phys = torch.arange(seq, device=input_ids.device) + past_len
            kv_phys = torch.arange(past_len + seq, device=input_ids.device)
            causal = kv_phys[None, :] <= q_phys[:, None]                     # [s, past+s]
            allowed = causal[None, None, :, :] & (mask[:, None, None, :] > 0)  # [b,1,s,past+s]
            if sliding:
                bias = export_families.layer_masks(self.model.config, allowed, self._bias)
            else:
                zero = torch.zeros((), dtype=dtype, device=input_ids.device)
                bias = torch.where(allowed, zero, torch.full((), neg, dtype=dtype, device=input_ids.device))
        out = self.base(input_ids=input_ids, attention_mask=bias, position_ids=position_ids,
                        past_key_values=cache, use_cache=True)
        hidden = out.last_hidden_state
        if keep is None:
            logits = export_families.final_logits(self.model.config, self.lm_head(hidden).float())
        else:
            k = keep.item()
            torch._check(k >= 0)
            logits = export_families.final_logits(self.model.config, self.lm_head(hidden[:, -k:]).float())
        result = [logits]
        pkv = out.past_key_values
        for i in range(self.num_layers):
            layer = pkv.layers[i]
            result += [layer.keys, layer.values]
        if self.with_hidden:
            result.append(hidden.float() if dtype != torch.float32 else hidden)
        return tuple(result)

    def _bias(self, visible):
        """Boolean [b,1,s,T] -> additive mask in the compute dtype (0 = attend, dtype min = masked)."""
        zero = torch.zeros((), dtype=self.dtype)
        return torch.where(visible, zero, torch.full((), torch.finfo(self.dtype).min, dtype=self.dtype))


def example_inputs(model, packed, batch=2, seq=3, past=4, logits_to_keep=False):
    layers, kv_heads, head_dim, _ = geometry(model.config)
    dtype = next(model.parameters()).dtype
    vocab = model.config.get_text_config(decoder=True).vocab_size
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (batch, seq), generator=g)
    position_ids = (torch.arange(seq) + past).unsqueeze(0).expand(batch, seq).contiguous()
    if packed:
        batch = 1
        input_ids = input_ids[:1]
        position_ids = position_ids[:1]
        total = past + seq
        m = torch.arange(total)[None, :] <= (torch.arange(seq) + past)[:, None]
        mask = torch.where(m, 0.0, MASK_MIN_FP32).to(torch.float32)[None, None]
    else:
        mask = torch.ones((batch, past + seq), dtype=torch.int64)
    pkv = []
    for _ in range(layers):
        pkv.append(torch.randn(batch, kv_heads, past, head_dim, generator=g).to(dtype))
        pkv.append(torch.randn(batch, kv_heads, past, head_dim, generator=g).to(dtype))
    keep = (torch.tensor(2, dtype=torch.int64),) if logits_to_keep else ()
    return (input_ids, mask, position_ids, *keep, *pkv)


def export_onnx(model, out_dir, with_hidden=False, packed=False, fp16=False, opset=18, logits_to_keep=False,
                graph="auto", log=print):
    """Writes model.onnx (+ model.onnx_data when large) and returns (its path, "fused" or "torch").

    graph: "fused" (export_fused: ONNX Runtime's fused operators, Llama and Qwen2), "torch" (torch.onnx), or "auto":
    fused when the model allows it, else torch.onnx with the reason logged.
    """
    from . import export_fused

    if graph in ("auto", "fused"):
        try:
            proto = export_fused.build(model, packed=packed, with_hidden=with_hidden, logits_to_keep=logits_to_keep,
                                       opset=opset)
        except export_fused.NotFusable as ex:
            if graph == "fused":
                raise SystemExit(f"export: --graph fused cannot build this model: {ex}; use --graph torch") from ex
            log(f"export: writing the torch.onnx graph, not the fused one: {ex}")
        else:
            return _save(proto, out_dir, check=False), "fused"
    return _export_torch(model, out_dir, with_hidden, packed, opset, logits_to_keep), "torch"


def _save(proto, out_dir, check=True):
    """Saves a post-processed graph as model.onnx, its weights in model.onnx_data past protobuf's 2 GB."""
    import onnx

    path = os.path.join(out_dir, "model.onnx")
    for stale in ("model.onnx", "model.onnx_data"):
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    if proto.ByteSize() > 1_800_000_000:
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx_data", size_threshold=1024)
    else:
        onnx.save_model(proto, path)
    if check:
        onnx.checker.check_model(path)  # by path: the checker finds model.onnx_data beside it
    return path


def _export_torch(model, out_dir, with_hidden, packed, opset, logits_to_keep):
    import onnx
    from torch.export import Dim

    layers = geometry(model.config)[0]
    wrapper = DecoderWithPast(model, packed=packed, with_hidden=with_hidden, logits_to_keep=logits_to_keep).eval()
    args = example_inputs(model, packed, logits_to_keep=logits_to_keep)
    in_names, out_names = io_names(layers, packed, with_hidden, logits_to_keep)
    batch = Dim("batch_size")
    seq = Dim("sequence_length")
    past = Dim("past_sequence_length")
    total = Dim.AUTO
    if packed:
        ds_ids = {1: seq}
        ds_mask = {2: seq, 3: total}
        ds_pkv = tuple({2: past} for _ in range(2 * layers))
    else:
        ds_ids = {0: batch, 1: seq}
        ds_mask = {0: batch, 1: total}
        ds_pkv = tuple({0: batch, 2: past} for _ in range(2 * layers))
    # forward's *past varargs take logits_to_keep first when present: one nested tuple for all of them
    dynamic_shapes = (ds_ids, ds_mask, ds_ids, ((None,) + ds_pkv) if logits_to_keep else ds_pkv)

    path = os.path.join(out_dir, "model.onnx")
    for stale in ("model.onnx", "model.onnx_data"):
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    tmp = tempfile.mkdtemp(prefix="specula-export-", dir=out_dir)
    try:
        with torch.no_grad():
            prog = torch.onnx.export(wrapper, args, dynamo=True, input_names=in_names, output_names=out_names,
                                     dynamic_shapes=dynamic_shapes, opset_version=opset, optimize=True,
                                     external_data=False, verbose=False)
        if weight_bytes <= STREAM_WEIGHTS_ABOVE_BYTES:
            _save(postprocess(prog.model_proto, packed=packed, layers=layers, with_hidden=with_hidden), out_dir,
                  check=False)
        else:
            # Over protobuf's 2 GB a ModelProto cannot hold the weights: the exporter streams them to one external
            # file, and only the graph (tensors reference the file by offset) is post-processed in memory.
            staged = os.path.join(tmp, "model.onnx")
            prog.save(staged, external_data=True)
            del prog
            proto = onnx.load_model(staged, load_external_data=False)
            data_files = set()
            for tensor in proto.graph.initializer:
                for entry in tensor.external_data:
                    if entry.key == "location":
                        data_files.add(entry.value)
                        entry.value = "model.onnx_data"
            if len(data_files) != 1:
                raise SystemExit(f"export: expected one external data file from the exporter, got {data_files}")
            os.replace(os.path.join(tmp, data_files.pop()), os.path.join(out_dir, "model.onnx_data"))
            proto = postprocess(proto, packed=packed, layers=layers, with_hidden=with_hidden, check=False)
            onnx.save_model(proto, path)
            onnx.checker.check_model(path)  # by path: the checker finds model.onnx_data beside it
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def postprocess(proto, packed, layers, with_hidden, check=True):
    """IR version for ONNX Runtime 1.29, readable symbolic dim names on the graph inputs/outputs."""
    import onnx

    proto.ir_version = min(proto.ir_version, 10)
    # Drop the exporter's per-node stack traces / doc strings (they are ~1/3 of a tiny model's file).
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.metadata_props[:]
    names = {"input_ids": ["batch_size", "sequence_length"],
             "position_ids": ["batch_size", "sequence_length"],
             "attention_mask": ["batch_size", "total_sequence_length"],
             "attention_bias": [None, None, "sequence_length", "total_sequence_length"],
             "logits": ["batch_size", "logits_rows", None],
             "last_hidden_state": ["batch_size", "sequence_length", None]}
    for i in range(layers):
        for kind in ("key", "value"):
            names[f"past_key_values.{i}.{kind}"] = ["batch_size", None, "past_sequence_length", None]
            names[f"present.{i}.{kind}"] = ["batch_size", None, "total_sequence_length", None]
    renames = {}
    for vi in list(proto.graph.input) + list(proto.graph.output):
        want = names.get(vi.name)
        if not want:
            continue
        dims = vi.type.tensor_type.shape.dim
        for d, w in zip(dims, want):
            if w is not None and d.HasField("dim_param") and d.dim_param != w:
                renames.setdefault(d.dim_param, w)
    if renames:
        # Rename consistently everywhere (inputs, outputs, value_info) so shape inference stays coherent.
        def fix(vis):
            for vi in vis:
                if not vi.type.HasField("tensor_type"):
                    continue
                for d in vi.type.tensor_type.shape.dim:
                    if d.HasField("dim_param") and d.dim_param in renames:
                        d.dim_param = renames[d.dim_param]
        fix(proto.graph.input)
        fix(proto.graph.output)
        fix(proto.graph.value_info)
    if check:
        onnx.checker.check_model(proto)
    return proto


def _chat_template(model_dir, tokenizer):
    path = os.path.join(model_dir, "chat_template.jinja")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return f.read()
    cfg = os.path.join(model_dir, "tokenizer_config.json")
    if os.path.exists(cfg):
        with open(cfg, encoding="utf-8") as f:
            t = json.load(f).get("chat_template")
        if isinstance(t, str):
            return t
    t = getattr(tokenizer, "chat_template", None)
    return t if isinstance(t, str) else None


def write_side_files(model_dir, out_dir, model, tokenizer, options):
    """config.json, generation_config.json, tokenizer files (chat template inlined + chat_template.jinja)."""
    model.config.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["dtype"] = "float16" if options.get("fp16") else "float32"
    cfg.pop("torch_dtype", None)
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    src_gen = os.path.join(model_dir, "generation_config.json")
    if os.path.exists(src_gen):
        shutil.copyfile(src_gen, os.path.join(out_dir, "generation_config.json"))
    else:
        model.generation_config.save_pretrained(out_dir)

    tmp = tempfile.mkdtemp(prefix="specula-tok-")
    try:
        tokenizer.save_pretrained(tmp)
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            src = os.path.join(model_dir, name)
            if not os.path.exists(src):
                src = os.path.join(tmp, name)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(out_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # tokenizer.json is the pipeline transformers actually runs, not the source file: transformers 5's
    # tokenizer classes may rebuild parts of it (Qwen2Tokenizer replaces a plain ByteLevel pre-tokenizer with
    # Qwen's digit-splitting regex), and the Java side (DJL) reads tokenizer.json verbatim.
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.save(os.path.join(out_dir, "tokenizer.json"))
    elif os.path.exists(os.path.join(model_dir, "tokenizer.json")):
        shutil.copyfile(os.path.join(model_dir, "tokenizer.json"), os.path.join(out_dir, "tokenizer.json"))
    template = _chat_template(model_dir, tokenizer)
    tc_path = os.path.join(out_dir, "tokenizer_config.json")
    with open(tc_path, encoding="utf-8") as f:
        tc = json.load(f)
    jinja = os.path.join(out_dir, "chat_template.jinja")
    if template is not None:
        tc["chat_template"] = template
        with open(jinja, "w", encoding="utf-8") as f:
            f.write(template)
    elif os.path.exists(jinja):
        os.remove(jinja)
    with open(tc_path, "w", encoding="utf-8") as f:
        json.dump(tc, f, indent=2, ensure_ascii=False)
        f.write("\n")

    layers, kv_heads, head_dim, hidden = geometry(model.config)
    info = {
        "format": "text-generation-with-past",
        "model_type": model.config.model_type,
        "num_layers": layers, "num_kv_heads": kv_heads, "head_dim": head_dim, "hidden_size": hidden,
        "vocab_size": model.config.get_text_config(decoder=True).vocab_size,
        "kv_dtype": "float16" if options.get("fp16") else "float32",
        "logits_dtype": "float32",
        "with_hidden": bool(options.get("with_hidden")),
        "packed": bool(options.get("packed")),
        "mask_input": "attention_bias" if options.get("packed") else "attention_mask",
        "logits_to_keep": bool(options.get("logits_to_keep")),
        "attention_bias_masked_value": MASK_MIN_FP32 if options.get("packed") else None,
        "causal_mask": "physical cache index; positions from position_ids",
        "opset": options.get("opset"),
        "graph": options.get("graph", "torch"),
    }
    if options.get("with_packed"):
        # --with-packed: model.onnx as above, and beside it the packed graph over the same weights
        info["packed_graph"] = {"file": "model_packed.onnx", "mask_input": "attention_bias",
                                "attention_bias_masked_value": MASK_MIN_FP32, "weights_file": "model.onnx_data"}
    with open(os.path.join(out_dir, "export_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
