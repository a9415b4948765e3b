"""The fused graph of ``export``: Llama-family decoders written directly with ONNX Runtime's fused operators.

torch.onnx's graph of a decoder layer is about 70 small nodes (RMSNorm as Pow/ReduceMean/Sqrt/Reciprocal/Mul,
rotary as Slice/Neg/Concat/Mul/Add, attention as Transpose/Expand/MatMul/Softmax...). At the embedded pair's size
ONNX Runtime spends more time launching those nodes than in the matrix products. This graph has 14 nodes a layer:

    SkipSimplifiedLayerNormalization -> MatMul qkv (one packed weight) [+ Add bias] -> Split
      [-> SkipSimplifiedLayerNormalization (zero skip) q, k per head: Qwen3's q/k norms]
      -> RotaryEmbedding q, RotaryEmbedding k (position_ids, token by token)
      -> GroupQueryAttention (the KV concat, the mask as attention_bias)
      -> MatMul o -> SkipSimplifiedLayerNormalization -> MatMul gate, MatMul up -> Sigmoid, Mul, Mul -> MatMul down

Gemma-2 and Gemma-3 add a norm after the attention and one after the MLP (SkipSimplifiedLayerNormalization with a
zero skip), gelu (FastGelu, the tanh form), embeddings scaled by sqrt(hidden), norm weights stored as 1 + w
(``*.weight_plus_one``), attention soft-capping (GroupQueryAttention's softcap) and final soft-capping (Tanh).

Same inputs and outputs as the torch.onnx export (export_core.io_names), same mask semantics: the causal mask is by
physical cache slot, positions come only from position_ids, and a masked slot (attention_mask 0, or an
attention_bias below zero) changes nothing, so rollback may leave holes. GroupQueryAttention is told that every row's
cache is full (seqlens_k = total - 1): its own causal rule then is the physical one, and the holes and pads are
masked by the attention_bias built here from attention_mask (or taken as given with --packed).

Sliding-window layers (Mistral, Gemma) get their own attention_bias, computed once a call: the visible slots of
the full bias whose count of visible slots after them, in the query's row, is under the window. That is the
logical window of export_families (holes do not count), so rollback stays exact there too.

GPT-2 (:class:`_Gpt2Decoder`) has LayerNorms with a bias (SkipLayerNormalization), learned positions, biased
projections, FastGelu and no rotary.

Supported: llama (rope default, linear, llama3, yarn), qwen2, qwen3 (q/k norms), mistral, gemma2, gemma3_text
(per-layer-type rotary tables) and gpt2, float32 compute. Anything else (length-dependent rope, other activations)
is refused by name with :class:`NotFusable`, and ``export`` then writes the torch.onnx graph.
"""
import numpy as np

FUSABLE_TYPES = ("llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3_text", "gpt2")
GEMMA = ("gemma2", "gemma3_text")
# GPT-2's activation_function -> the com.microsoft operator that computes it
GPT2_GELU = {"gelu_new": "FastGelu", "gelu_pytorch_tanh": "FastGelu", "gelu": "BiasGelu"}
STATIC_ROPE = ("default", "linear", "llama3", "yarn")
MS = "com.microsoft"


class NotFusable(Exception):
    """The model needs something the fused graph does not build; the message names it."""


def check_fusable(config, fp16):
    c = config.get_text_config(decoder=True)
    if c.model_type not in FUSABLE_TYPES:
        raise NotFusable(f"model_type {c.model_type!r} (fused: {', '.join(FUSABLE_TYPES)})")
    if fp16:
        raise NotFusable("--fp16 compute (the fused graph computes in float32)")
    if getattr(c, "use_sliding_window", False) and c.model_type not in GEMMA:
        raise NotFusable("use_sliding_window (max_window_layers)")
    if c.model_type == "gpt2":
        if c.activation_function not in GPT2_GELU:
            raise NotFusable(f"activation_function {c.activation_function!r} (fused GPT-2: "
                             f"{', '.join(GPT2_GELU)})")
        if getattr(c, "add_cross_attention", False):
            raise NotFusable("add_cross_attention")
    elif c.model_type in GEMMA:
        act = getattr(c, "hidden_activation", None) or getattr(c, "hidden_act", None)
        if act not in ("gelu_pytorch_tanh", "gelu_tanh"):
            raise NotFusable(f"hidden_activation {act!r} (fused Gemma: gelu_pytorch_tanh)")
        if getattr(c, "use_bidirectional_attention", False):
            raise NotFusable("use_bidirectional_attention")
    elif getattr(c, "hidden_act", "silu") != "silu":
        raise NotFusable(f"hidden_act {c.hidden_act!r} (fused: silu)")
    for rope in _rope_types(c):
        if rope not in STATIC_ROPE:
            raise NotFusable(f"rope_type {rope!r}, whose frequencies depend on the sequence length")
    if getattr(c, "pretraining_tp", 1) not in (None, 1):
        raise NotFusable("pretraining_tp > 1")


def _rope_types(c):
    params = getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None) or {}
    if _per_layer_type(c):
        return [p.get("rope_type", "default") for p in params.values()]
    return [params.get("rope_type", params.get("type", "default"))]


def _per_layer_type(c):
    """Gemma-3: rope_parameters per layer type (full_attention, sliding_attention), one rotary table each."""
    params = getattr(c, "rope_parameters", None) or {}
    return bool(params) and all(isinstance(v, dict) for v in params.values())


def rotary_tables(model, max_positions, layer_type=None):
    """cos and sin [max_positions, head_dim / 2] as the model's own rotary module computes them (scaling included);
    layer_type: the table of that layer type (Gemma-3)."""
    import torch

    rotary = model.base_model.rotary_emb
    positions = torch.arange(max_positions, dtype=torch.int64)[None, :]
    probe = torch.zeros(1, dtype=torch.float32)
    with torch.no_grad():
        # [1, max_positions, head_dim], the two halves equal
        cos, sin = rotary(probe, positions) if layer_type is None else rotary(probe, positions, layer_type)
    half = cos.shape[-1] // 2
    if not torch.equal(cos[..., :half], cos[..., half:]):
        raise NotFusable("a rotary embedding whose two halves differ (interleaved rotary)")
    return cos[0, :, :half].float().numpy(), sin[0, :, :half].float().numpy()


class _Graph:
    """Nodes and initializers under construction, with fresh value names. A branch (an If's subgraph) has its own
    nodes and shares its parent's initializers and names."""

    def __init__(self, parent=None):
        self.nodes = []
        self.initializers = parent.initializers if parent else []
        self.parent = parent
        self.count = 0

    def branch(self):
        return _Graph(self)

    def value(self, hint):
        if self.parent:
            return self.parent.value(hint)
        self.count += 1
        return f"{hint}_{self.count}"

    def node(self, op, inputs, outputs=1, domain="", name_hint=None, **attrs):
        from onnx import helper

        names = [self.value(name_hint or op.lower()) for _ in range(outputs)] if isinstance(outputs, int) \
            else list(outputs)
        self.nodes.append(helper.make_node(op, inputs, names, domain=domain or None, **attrs))
        return names[0] if len(names) == 1 else names

    def weight(self, name, array):
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, hint, array):
        return self.weight(self.value(hint), np.asarray(array))



class _Shapes:
    """Values every layer reads: batch b, new tokens s, past P and total T = P + s ([1] int64 each), the masks."""

    def __init__(self, g, packed, window=None):
        from onnx import TensorProto

        from .export_core import MASK_MIN_FP32

        ids_shape = g.node("Shape", ["input_ids"], name_hint="ids_shape")
        self.batch = g.node("Slice", [ids_shape, g.const("zero", [0]), g.const("one", [1])], name_hint="batch")
        self.seq = g.node("Slice", [ids_shape, g.const("one", [1]), g.const("two", [2])], name_hint="seq")
        # T from the mask (or bias), not from the past: the same number, P + s, unless the past is a larger buffer
        # that GroupQueryAttention writes in place (past and present bound to one tensor)
        mask_shape = g.node("Shape", ["attention_bias" if packed else "attention_mask"])
        axis = [3, 4] if packed else [1, 2]
        self.total = g.node("Slice", [mask_shape, g.const("t_from", axis[:1]), g.const("t_to", axis[1:])],
                            name_hint="total")
        self.past = g.node("Sub", [self.total, self.seq], name_hint="past_len")
        attend = g.const("attend", np.array(0.0, np.float32))
        if packed:
            # the input is the whole mask, causality included; -inf -> -1e9 keeps the softmax finite
            self.holes = self.full = g.node("Max", ["attention_bias", g.const("floor", np.array(MASK_MIN_FP32,
                                                                                                np.float32))],
                                            name_hint="bias")
            allowed = g.node("Equal", ["attention_bias", attend])  # [1, 1, s, T]
            masked = g.const("masked", np.array(MASK_MIN_FP32, np.float32))
        else:
            masked = g.const("masked", np.array(np.finfo(np.float32).min, np.float32))
            visible = g.node("Greater", ["attention_mask", g.const("zero_i64", np.array(0, np.int64))])  # [b, T]
            rows = g.node("Unsqueeze", [g.node("Where", [visible, attend, masked]), g.const("axes", [1, 2])])
            bias_shape = g.node("Concat", [self.batch, g.const("one", [1]), self.seq, self.total], axis=0)
            # [b, 1, s, T]: the holes and pads only; GroupQueryAttention adds the causal rule itself
            self.holes = g.node("Expand", [rows, bias_shape], name_hint="holes")
            # [b, 1, s, T]: the same with causality by physical slot, for the decomposed attention
            step = g.const("step", np.array(1, np.int64))
            q_slot = g.node("Range", [g.node("Squeeze", [self.past]), g.node("Squeeze", [self.total]), step])
            kv_slot = g.node("Range", [g.const("zero_s", np.array(0, np.int64)), g.node("Squeeze", [self.total]),
                                       step])
            causal = g.node("LessOrEqual", [g.node("Unsqueeze", [kv_slot, g.const("a0", [0])]),
                                            g.node("Unsqueeze", [q_slot, g.const("a1", [1])])])  # [s, T]
            allowed = g.node("And", [g.node("Unsqueeze", [causal, g.const("a01", [0, 1])]),
                                     g.node("Unsqueeze", [visible, g.const("a12", [1, 2])])])
            self.full = g.node("Where", [allowed, attend, masked], name_hint="bias")
        # [b, 1, s, T], sliding-window layers: a visible slot stays visible while fewer than `window` visible slots
        # of the query's row follow it (causality included, so only slots up to the query count)
        self.window = None
        if window is not None:
            after = g.node("CumSum", [g.node("Cast", [allowed], to=TensorProto.INT32),
                                      g.const("last_axis_scalar", np.array(3, np.int64))],
                           exclusive=1, reverse=1, name_hint="visible_after")
            inside = g.node("And", [allowed, g.node("Less", [after, g.const("window", np.array(window, np.int32))])])
            self.window = g.node("Where", [inside, attend, masked], name_hint="window_bias")
        # GroupQueryAttention: every row's cache is full to T (seqlens_k = T - 1 per row, total_sequence_length T)
        total32 = g.node("Cast", [self.total], to=TensorProto.INT32)
        self.seqlens = g.node("Expand", [g.node("Sub", [total32, g.const("one_i32", np.array([1], np.int32))]),
                                         self.batch], name_hint="seqlens_k")
        self.total_scalar = g.node("Squeeze", [total32, g.const("axis0", [0])], name_hint="total_scalar")


class _Decoder:
    """The layers of one model, writable into a graph or a branch with either attention."""

    def __init__(self, model):
        from .export_core import geometry
        from .export_families import layer_types, sliding_window

        config = model.config.get_text_config(decoder=True)
        check_fusable(config, fp16=next(model.parameters()).dtype != __import__("torch").float32)
        self.model = model
        self.layers, self.kv_heads, self.head_dim, self.hidden = geometry(model.config)
        self.heads = config.num_attention_heads
        self.vocab = config.vocab_size
        self.eps = float(getattr(config, "rms_norm_eps", None) or config.layer_norm_epsilon)
        self.max_positions = config.max_position_embeddings
        self.gemma = config.model_type in GEMMA
        self.layer_types = layer_types(model.config)  # "full_attention" / "sliding_attention" per layer
        self.window = sliding_window(model.config)
        self.rotary_per_type = _per_layer_type(config)
        self.embed_scale = float(self.hidden) ** 0.5 if self.gemma else None
        self.attn_softcap = getattr(config, "attn_logit_softcapping", None)
        self.final_softcap = getattr(config, "final_logit_softcapping", None)
        blocks = getattr(model.base_model, "layers", None) or model.base_model.h  # GPT-2: h
        self.scale = [float(getattr(getattr(block, "self_attn", None) or block.attn, "scaling",
                                    self.head_dim ** -0.5)) for block in blocks]
        self.state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
        lm_head = model.get_output_embeddings()
        if getattr(lm_head, "bias", None) is not None:
            raise NotFusable("an lm_head bias")
        self.tied = lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
        self.embeddings = "model.embed_tokens.weight"
        # Qwen3: q and k are RMS-normed per head (weight [head_dim]) before the rotary embedding
        self.head_norms = "model.layers.0.self_attn.q_norm.weight" in self.state
        self.heads_shape = {}  # heads -> [b, s, heads d] as a value of the graph being written (write)

    def weights(self, g):
        """Initializers shared by both branches: rotary tables and every weight, by their Hugging Face names."""
        for kind in sorted(set(self.layer_types)) if self.rotary_per_type else [None]:
            cos, sin = rotary_tables(self.model, self.max_positions, kind)
            g.weight(self._rotary_name(kind, "cos"), cos)
            g.weight(self._rotary_name(kind, "sin"), sin)
        st = self.state
        g.weight("model.embed_tokens.weight", st["model.embed_tokens.weight"])
        norms = ["input_layernorm", "post_attention_layernorm"]
        if self.gemma:
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        if self.head_norms:
            norms += ["self_attn.q_norm", "self_attn.k_norm"]
        for i in range(self.layers):
            p = f"model.layers.{i}."
            for norm in norms:
                self._norm_weight(g, p + norm + ".weight")
            # one packed weight for q, k and v: [hidden, (heads + 2 kv_heads) head_dim]
            g.weight(p + "self_attn.qkv_proj.weight_t",
                     np.concatenate([st[p + f"self_attn.{n}_proj.weight"] for n in "qkv"], axis=0).T)
            if p + "self_attn.q_proj.bias" in st:
                g.weight(p + "self_attn.qkv_proj.bias",
                         np.concatenate([st[p + f"self_attn.{n}_proj.bias"] for n in "qkv"]))
            for name in ("self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
                g.weight(p + name + ".weight_t", st[p + name + ".weight"].T)
                if p + name + ".bias" in st:
                    g.weight(p + name + ".bias", st[p + name + ".bias"])
        self._norm_weight(g, "model.norm.weight")
        if not self.tied:
            g.weight("lm_head.weight_t", self.model.get_output_embeddings().weight.detach().float().numpy().T)

    def _norm_weight(self, g, name):
        """An RMSNorm weight by its Hugging Face name, as the initializer _w names (Gemma's norms scale by 1 + w)."""
        return g.weight(self._w(name), self.state[name] + np.float32(1.0) if self.gemma else self.state[name])

    def _w(self, name):
        """The initializer of a norm weight: Gemma's stored as 1 + w, under name + '_plus_one'."""
        return name + "_plus_one" if self.gemma else name

    def _rotary_name(self, kind, table):
        return f"rotary.{kind}.{table}_cache" if kind else f"rotary.{table}_cache"

    def _sliding(self, layer):
        return self.layer_types[layer] == "sliding_attention"

    def write(self, g, shapes, several, logits_to_keep, with_hidden, outputs):
        """Every layer, the final norm and the kept logits, into g; the graph outputs get the names in outputs.

        several: None (one row: GroupQueryAttention), or a bool scalar, true for b > 1 with s > 1, that an If per
        layer reads to run its attention in standard ops (GroupQueryAttention refuses those shapes)."""
        x = g.node("Gather", ["model.embed_tokens.weight", "input_ids"], name_hint="embedded")  # [b, s, H]
        if self.embed_scale is not None:
            x = g.node("Mul", [x, g.const("embed_scale", np.array(self.embed_scale, np.float32))], name_hint="scaled")
        if self.head_norms:  # the head norms' way back from [b s, count, d] to [b, s, count d], once a graph
            for count in sorted({self.heads, self.kv_heads}):
                width = g.const("heads_width", [count * self.head_dim])
                self.heads_shape[count] = g.node("Concat", [shapes.batch, shapes.seq, width], axis=0,
                                                 name_hint="heads_shape")
        residual, pending = None, None
        for i in range(self.layers):
            p = f"model.layers.{i}."
            if residual is None:
                normed, residual = self._lone_norm(g, x, self._w(p + "input_layernorm.weight")), x
            else:
                normed, residual = self._norm(g, pending, residual, self._w(p + "input_layernorm.weight"))
            qkv = self._linear(g, normed, p + "self_attn.qkv_proj")  # [b, s, (heads + 2 kv_heads) d]
            present = (outputs[1 + 2 * i], outputs[2 + 2 * i])
            attn = self._attention(g, shapes, several, qkv, i, present)  # [b, s, heads d]
            o = self._linear(g, attn, p + "self_attn.o_proj")
            if self.gemma:
                o = self._lone_norm(g, o, self._w(p + "post_attention_layernorm.weight"))
                mlp_norm = p + "pre_feedforward_layernorm.weight"
            else:
                mlp_norm = p + "post_attention_layernorm.weight"
            normed, residual = self._norm(g, o, residual, self._w(mlp_norm))
            gate = self._linear(g, normed, p + "mlp.gate_proj")
            up = self._linear(g, normed, p + "mlp.up_proj")
            if self.gemma:
                active = g.node("FastGelu", [gate], domain=MS, name_hint="gelu")  # gelu, tanh form
            else:
                active = g.node("Mul", [gate, g.node("Sigmoid", [gate])], name_hint="silu")
            pending = self._linear(g, g.node("Mul", [active, up], name_hint="act"), p + "mlp.down_proj")
            if self.gemma:
                pending = self._lone_norm(g, pending, self._w(p + "post_feedforward_layernorm.weight"))
        final, _ = self._norm(g, pending, residual, self._w("model.norm.weight"))  # [b, s, H]
        self._logits(g, final, logits_to_keep, with_hidden, outputs)

    def _logits(self, g, final, logits_to_keep, with_hidden, outputs):
        """The kept rows' logits [b, k, vocab] from the final hidden state [b, s, H] (and that state, if asked)."""
        kept = final
        if logits_to_keep:
            # the last k positions (k = 0: all of them, as transformers' logits_to_keep)
            start = g.node("Neg", [g.node("Reshape", ["logits_to_keep", g.const("shape1", [1])])])
            kept = g.node("Slice", [final, start, g.const("end", [np.iinfo(np.int64).max]), g.const("axis1", [1])],
                          name_hint="kept")
        head = "lm_head.weight_t" if not self.tied else g.node("Transpose", [self.embeddings],
                                                               perm=[1, 0], name_hint="lm_head_t")
        if self.final_softcap:
            # cap * tanh(logits / cap), as transformers' Gemma heads
            cap = g.const("final_softcap", np.array(self.final_softcap, np.float32))
            raw = g.node("MatMul", [kept, head], name_hint="raw_logits")
            g.node("Mul", [g.node("Tanh", [g.node("Div", [raw, cap])]), cap], outputs=[outputs[0]])
        else:
            g.node("MatMul", [kept, head], outputs=[outputs[0]])  # [b, k, vocab]
        if with_hidden:
            g.node("Identity", [final], outputs=[outputs[-1]])

    def _attention(self, g, shapes, several, qkv, layer, present):
        if several is None:
            return self._grouped(g, shapes, qkv, layer, present)
        from onnx import TensorProto, helper

        # the If holds only the attention: the weights' MatMuls stay in the main graph, where quantize finds them
        branches = []
        for attend in (self._decomposed, self._grouped):
            branch = g.branch()
            names = [branch.value("attn"), branch.value("present_key"), branch.value("present_value")]
            names[0] = attend(branch, shapes, qkv, layer, names[1:])
            branches.append(helper.make_graph(branch.nodes, attend.__name__.strip("_"), [],
                                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                                               for n in names]))
        attn = g.value("attn")
        g.node("If", [several], outputs=[attn, *present], then_branch=branches[0], else_branch=branches[1])
        return attn

    def _grouped(self, g, shapes, qkv, layer, present):
        # GroupQueryAttention's own rotary (do_rotary) places a row's tokens at position_ids[b, 0] + j: two
        # sequences packed in one row came out wrong with it. RotaryEmbedding rotates token by token.
        q, k, v = self._rotated(g, qkv, layer)
        attn = g.value("attn")
        extra = {"softcap": float(self.attn_softcap)} if self.attn_softcap else {}
        g.node("GroupQueryAttention",
               [q, k, v, f"past_key_values.{layer}.key", f"past_key_values.{layer}.value", shapes.seqlens,
                shapes.total_scalar, "", "", "", shapes.window if self._sliding(layer) else shapes.holes],
               outputs=[attn, *present], domain=MS, num_heads=self.heads, kv_num_heads=self.kv_heads,
               scale=self.scale[layer], **extra)
        return attn

    def _rotated(self, g, qkv, layer):
        """q, k (rotated by position_ids, token by token) and v of a packed projection [b, s, (heads + 2 kv) d]."""
        n, kv, d = self.heads, self.kv_heads, self.head_dim
        q, k, v = g.node("Split", [qkv, g.const("qkv_split", [n * d, kv * d, kv * d])], outputs=3, axis=-1)
        if self.head_norms:
            q = self._head_norm(g, q, n, "q", layer)
            k = self._head_norm(g, k, kv, "k", layer)
        kind = self.layer_types[layer] if self.rotary_per_type else None
        rotary = ["position_ids", self._rotary_name(kind, "cos"), self._rotary_name(kind, "sin")]
        q = g.node("RotaryEmbedding", [q] + rotary, domain=MS, num_heads=n, interleaved=0)
        k = g.node("RotaryEmbedding", [k] + rotary, domain=MS, num_heads=kv, interleaved=0)
        return q, k, v

    def _head_norm(self, g, x, count, role, layer):
        """RMSNorm of each head of x [b, s, count d] over its d values (Qwen3's and Gemma-3's q_norm / k_norm, [d])."""
        heads = g.node("Reshape", [x, g.const("rows_heads_d", [-1, count, self.head_dim])])  # [b s, count, d]
        normed = self._lone_norm(g, heads, self._w(f"model.layers.{layer}.self_attn.{role}_norm.weight"))
        return g.node("Reshape", [normed, self.heads_shape[count]], name_hint="head_normed")  # [b, s, count d]

    def _lone_norm(self, g, x, weight):
        """RMSNorm of x over its last axis with no residual (the first layer's input norm, Gemma's norms after the
        attention and the MLP, the head norms), in one node: SkipSimplifiedLayerNormalization of x with x
        itself as the skip and 4 eps. RMSNorm does not see a power-of-two scale: (2x) / sqrt(mean((2x)^2) + 4 eps)
        = x / sqrt(mean(x^2) + eps), and in float32 every step of it scales exactly, so it is the norm of x. (ONNX
        Runtime's SimplifiedLayerNormalization sits in the ONNX domain, where onnx.checker, which share_weights
        runs, does not know it; a zero skip needs x in rows of its shape, a Reshape each side.)"""
        return g.node("SkipSimplifiedLayerNormalization", [x, x, weight], domain=MS, epsilon=4 * self.eps,
                      name_hint="normed")

    def _decomposed(self, g, shapes, qkv, layer, present):
        """Grouped attention in standard ops (and the contrib RotaryEmbedding), for any batch and length."""
        n, kv, d = self.heads, self.kv_heads, self.head_dim
        q, k, v = self._rotated(g, qkv, layer)

        def heads_first(x, count):  # [b, s, count d] -> [b, count, s, d]
            return g.node("Transpose", [g.node("Reshape", [x, g.const("bshd", [0, 0, count, d])])],
                          perm=[0, 2, 1, 3])

        g.node("Concat", [f"past_key_values.{layer}.key", heads_first(k, kv)], outputs=[present[0]], axis=2)
        g.node("Concat", [f"past_key_values.{layer}.value", heads_first(v, kv)], outputs=[present[1]], axis=2)
        # the heads of one kv group are consecutive: [b, heads, s, d] -> [b, kv, group s, d]
        grouped_q = g.node("Reshape", [heads_first(q, n), g.const("grouped", [0, kv, -1, d])])
        keys_t = g.node("Transpose", [present[0]], perm=[0, 1, 3, 2])  # [b, kv, d, T]
        scores = g.node("Mul", [g.node("MatMul", [grouped_q, keys_t]),
                                g.const("scale", np.array(self.scale[layer], np.float32))])  # [b, kv, group s, T]
        if self.attn_softcap:
            cap = g.const("attn_softcap", np.array(self.attn_softcap, np.float32))
            scores = g.node("Mul", [g.node("Tanh", [g.node("Div", [scores, cap])]), cap], name_hint="capped")
        group = n // kv
        by_group = g.node("Concat", [shapes.batch, g.const("kv_group", [kv, group]), shapes.seq, shapes.total], axis=0)
        per_head = g.node("Reshape", [scores, by_group])  # [b, kv, group, s, T]
        bias = g.node("Unsqueeze", [shapes.window if self._sliding(layer) else shapes.full,
                                    g.const("a2", [2])])  # [b, 1, 1, s, T]
        probs = g.node("Softmax", [g.node("Add", [per_head, bias])], axis=-1)
        flat_shape = g.node("Concat", [shapes.batch, g.const("kv_rows", [kv, -1]), shapes.total], axis=0)
        flat = g.node("Reshape", [probs, flat_shape])  # [b, kv, group s, T]
        context = g.node("MatMul", [flat, present[1]])  # [b, kv, group s, d]
        by_head = g.node("Reshape", [context, g.const("by_head", [0, n, -1, d])])  # [b, heads, s, d]
        return g.node("Reshape", [g.node("Transpose", [by_head], perm=[0, 2, 1, 3]),
                                  g.const("bsh", [0, 0, n * d])], name_hint="attn")  # [b, s, heads d]

    def _norm(self, g, x, residual, weight):
        """RMSNorm of x + residual: (normed, the new residual stream)."""
        normed, summed = g.value("normed"), g.value("residual")
        g.node("SkipSimplifiedLayerNormalization", [x, residual, weight], outputs=[normed, "", "", summed],
               domain=MS, epsilon=self.eps)
        return normed, summed

    def _linear(self, g, x, name):
        y = g.node("MatMul", [x, name + ".weight_t"], name_hint=name.split(".")[-1])
        bias = name + ".bias"
        if any(init.name == bias for init in g.initializers):
            y = g.node("Add", [y, bias])
        return y


class _Gpt2Decoder(_Decoder):
    """GPT-2: LayerNorm with a bias, learned positions, every projection with a bias and already [in, out] (Conv1D),
    gelu, multi-head attention (GroupQueryAttention with kv_num_heads = num_heads) and no rotary. Weights keep
    transformers' names (transformer.h.{i}.attn.c_attn.weight...)."""

    LAYER_WEIGHTS = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                     "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                     "mlp.c_proj.weight", "mlp.c_proj.bias")

    def __init__(self, model):
        super().__init__(model)
        self.embeddings = "transformer.wte.weight"
        self.gelu = GPT2_GELU[model.config.activation_function]

    def weights(self, g):
        st = self.state
        for name in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight",
                     "transformer.ln_f.bias"):
            g.weight(name, st[name])
        for i in range(self.layers):
            for name in self.LAYER_WEIGHTS:
                g.weight(f"transformer.h.{i}.{name}", st[f"transformer.h.{i}.{name}"])
        if not self.tied:
            g.weight("lm_head.weight_t", self.model.get_output_embeddings().weight.detach().float().numpy().T)

    def write(self, g, shapes, several, logits_to_keep, with_hidden, outputs):
        tokens = g.node("Gather", ["transformer.wte.weight", "input_ids"], name_hint="tokens")  # [b, s, H]
        places = g.node("Gather", ["transformer.wpe.weight", "position_ids"], name_hint="places")  # [b, s, H]
        x = g.node("Add", [tokens, places], name_hint="embedded")
        residual, pending = None, None
        for i in range(self.layers):
            p = f"transformer.h.{i}."
            if residual is None:
                normed = g.node("LayerNormalization", [x, p + "ln_1.weight", p + "ln_1.bias"], axis=-1,
                                epsilon=self.eps, name_hint="norm")
                residual = x
            else:
                normed, residual = self._norm(g, pending, residual, p + "ln_1")
            qkv = self._linear(g, normed, p + "attn.c_attn")  # [b, s, 3 H]
            present = (outputs[1 + 2 * i], outputs[2 + 2 * i])
            attn = self._attention(g, shapes, several, qkv, i, present)  # [b, s, H]
            normed, residual = self._norm(g, self._linear(g, attn, p + "attn.c_proj"), residual, p + "ln_2")
            up = g.node("MatMul", [normed, p + "mlp.c_fc.weight"], name_hint="c_fc")
            active = g.node(self.gelu, [up, p + "mlp.c_fc.bias"], domain=MS, name_hint="gelu")  # bias, then gelu
            pending = self._linear(g, active, p + "mlp.c_proj")
        final, _ = self._norm(g, pending, residual, "transformer.ln_f")  # [b, s, H]
        self._logits(g, final, logits_to_keep, with_hidden, outputs)

    def _rotated(self, g, qkv, layer):
        """q, k, v of c_attn's output [b, s, 3 H]: learned positions, nothing to rotate."""
        return g.node("Split", [qkv, g.const("qkv_split", [self.hidden] * 3)], outputs=3, axis=-1)

    def _norm(self, g, x, residual, prefix):
        """LayerNorm of x + residual: (normed, the new residual stream)."""
        normed, summed = g.value("normed"), g.value("residual")
        g.node("SkipLayerNormalization", [x, residual, prefix + ".weight", prefix + ".bias"],
               outputs=[normed, "", "", summed], domain=MS, epsilon=self.eps)
        return normed, summed

    def _linear(self, g, x, name):
        return g.node("Add", [g.node("MatMul", [x, name + ".weight"], name_hint=name.split(".")[-1]),
                              name + ".bias"])


def build(model, packed, with_hidden, logits_to_keep, opset):
    """The fused ModelProto of a float32 Llama-family model (raises NotFusable first if it cannot be built).

    The --packed graph is one row (b = 1): GroupQueryAttention throughout. The attention_mask graph also serves
    padded batches, and GroupQueryAttention refuses b > 1 with s > 1 over a past: an If in each layer runs the
    decomposed attention for those calls (a batched verification or prefill), GroupQueryAttention for the rest."""
    from onnx import TensorProto, helper

    from .export_core import io_names

    decoder = (_Gpt2Decoder if model.config.model_type == "gpt2" else _Decoder)(model)
    layers, kv_heads, head_dim = decoder.layers, decoder.kv_heads, decoder.head_dim
    in_names, out_names = io_names(layers, packed, with_hidden, logits_to_keep)
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])]
    if packed:
        inputs.append(helper.make_tensor_value_info("attention_bias", TensorProto.FLOAT,
                                                    [1, 1, "sequence_length", "total_sequence_length"]))
    else:
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                                    ["batch_size", "total_sequence_length"]))
    inputs.append(helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]))
    if logits_to_keep:
        inputs.append(helper.make_tensor_value_info("logits_to_keep", TensorProto.INT64, []))
    for i in range(layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", TensorProto.FLOAT,
                                                        ["batch_size", kv_heads, "past_sequence_length", head_dim]))
    assert [v.name for v in inputs] == in_names
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                             ["batch_size", "logits_rows", decoder.vocab])]
    for i in range(layers):
        for kind in ("key", "value"):
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", TensorProto.FLOAT,
                                                         ["batch_size", kv_heads, "total_sequence_length", head_dim]))
    if with_hidden:
        outputs.append(helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                                     ["batch_size", "sequence_length", decoder.hidden]))
    assert [v.name for v in outputs] == out_names

    g = _Graph()
    decoder.weights(g)
    shapes = _Shapes(g, packed, decoder.window)
    several = None
    if not packed:
        one = g.const("one", [1])
        several = g.node("Squeeze", [g.node("And", [g.node("Greater", [shapes.batch, one]),
                                                    g.node("Greater", [shapes.seq, one])]),
                                     g.const("axis0", [0])], name_hint="several")
    decoder.write(g, shapes, several, logits_to_keep, with_hidden, out_names)
    graph = helper.make_graph(g.nodes, "specula-fused-decoder", inputs, outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)],
                              producer_name="specula_tools.export_fused")
    proto.ir_version = 10
    return proto
