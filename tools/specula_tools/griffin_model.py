"""GRIFFIN draft head (arXiv 2502.11018) for a Llama target: the torch module, its ONNX graph and a timing probe.

Vocabulary used below (one pair per row t):
  f_t      the target's ``last_hidden_state`` (after the final norm) at position t, i.e. after reading x_t;
  x_{t+1}  the next token, whose (frozen, target) embedding is fed with f_t;
  predict  the first H outputs of the decoder layer: frozen target lm_head -> logits for x_{t+2};
  regress  the second H outputs: the head's estimate of f_{t+1}, fed to the next drafted node.

Head (per row): token-guided fusion
    u0 = fc([emb(x_{t+1}); h_t])                                   # 2H -> H, bias
    u  = u0 + down(SiLU(up([norm_s(norm_u(u0)); norm_s(emb)])))    # EMLP: 2H -> I_e -> H, one shared norm_s
then one Llama decoder layer without input norm: RoPE attention (GQA), residual a = u + attn,
post-attention RMSNorm, SwiGLU MLP whose down projection writes 2H, residual cat(a, a);
split -> predict | regress. ``fusion=False`` keeps only u = fc([emb; h]) (EAGLE's input, the ablation).

The ONNX graph is written with onnx.helper (opset 18, float32 compute, large weights stored float16 and cast):
inputs ``input_ids`` [1,s], ``hidden_states`` [1,s,H], ``position_ids`` [1,s], ``attention_bias`` [1,1,s,past+s]
(additive; the graph adds no mask of its own), ``past_key_values.0.key/value`` [1,kv,past,d], ``logits_to_keep``
int64 [] (k: logits of the last k rows only; 0: all); outputs ``logits``
[1,s,V] (full width; with a draft vocabulary the other tokens read -1e9), ``regress`` [1,s,H],
``present.0.key/value`` [1,kv,past+s,d] (keys after rotary).
"""
import json
import os
import time

import numpy as np

MASKED = -1e9
MS = "com.microsoft"
EXTERNAL_DATA_BYTES = 1_800_000_000  # larger initializers in all: model.onnx.data
FP16_MIN_ELEMENTS = 1024  # smaller initializers (norm weights, biases) stay float32, as onnx_fp16_weights


def rope_parameters(target_cfg):
    """The target's RoPE settings as one dict (transformers 5's ``rope_parameters``; older configs keep
    ``rope_theta`` and ``rope_scaling`` apart): rope_type, rope_theta and the type's own fields."""
    rope = dict(target_cfg.get("rope_parameters") or target_cfg.get("rope_scaling") or {})
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    rope.pop("type", None)
    rope["rope_type"] = rope_type
    rope.setdefault("rope_theta", float(target_cfg.get("rope_theta", 10000.0)))
    return rope


def token_table_mode(vocab, hidden, emlp, requested="auto", fold_max_mb=256):
    """'fold' (gather rows of fc_tok [V,H] and emlp_tok [V,I_e]: no per-row work for the token's half of the
    fusion) or 'graph' (gather rows of the embedding E [V,H] and multiply them by the fusion's token weights in the
    graph). Both are exact algebra; 'fold' stores V x (H + I_e) table elements, 'graph' V x H + H x (H + I_e).
    auto: fold when the folded tables take at most fold_max_mb (float16), else graph."""
    if requested in ("fold", "graph"):
        return requested
    mb = vocab * (hidden + emlp) * 2 / 1e6
    return "fold" if mb <= fold_max_mb else "graph"


def default_config(target_cfg, intermediate_size=512, emlp_size=384, draft_vocab_size=None, fusion=True,
                   token_tables="auto", fold_max_mb=256):
    """Head config (plain dict, also written to config.json) from the target's config.json dict: every shape
    (hidden, heads, kv heads, head_dim, vocabulary, positions, RoPE) is the target's."""
    rope = rope_parameters(target_cfg)
    H = target_cfg["hidden_size"]
    heads = target_cfg["num_attention_heads"]
    V = target_cfg["vocab_size"]
    Ie = emlp_size if fusion else 0
    return {
        "model_type": "griffin_head",
        "architectures": ["GriffinHead"],
        "hidden_size": H,
        "num_hidden_layers": 1,
        "num_attention_heads": heads,
        "num_key_value_heads": target_cfg.get("num_key_value_heads") or heads,
        "head_dim": target_cfg.get("head_dim") or H // heads,
        "vocab_size": V,
        "max_position_embeddings": target_cfg["max_position_embeddings"],
        "rope_theta": float(rope["rope_theta"]),
        "rope_parameters": rope,
        "rms_norm_eps": float(target_cfg["rms_norm_eps"]),
        "intermediate_size": intermediate_size,
        "emlp_size": Ie,
        "draft_vocab_size": draft_vocab_size or V,
        "token_guided_fusion": bool(fusion),
        "token_tables": token_table_mode(V, H, Ie, token_tables, fold_max_mb),
        "bos_token_id": target_cfg.get("bos_token_id"),
        "eos_token_id": target_cfg.get("eos_token_id"),
        "pad_token_id": target_cfg.get("pad_token_id"),
        "target_hidden_size": H,
    }


def rope_frequencies(cfg):
    """(inv_freq float32 [d/2], attention_scaling) of the head's RoPE: the target's type and parameters
    (default, linear, llama3, yarn, ...: transformers' ROPE_INIT_FUNCTIONS; a dynamic type keeps its base
    frequencies, as the head is trained and exported with the same ones)."""
    torch = _torch()
    d = cfg["head_dim"]
    rope = cfg.get("rope_parameters") or {"rope_type": "default", "rope_theta": cfg["rope_theta"]}
    if rope.get("rope_type", "default") == "default":
        inv = 1.0 / (rope["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        return inv.float(), 1.0
    from transformers import PretrainedConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    if rope["rope_type"] not in ROPE_INIT_FUNCTIONS:
        raise SystemExit(f"griffin head: the target's rope_type {rope['rope_type']!r} is not one transformers knows")
    c = PretrainedConfig()
    c.rope_parameters = dict(rope)
    c.hidden_size, c.num_attention_heads, c.head_dim = cfg["hidden_size"], cfg["num_attention_heads"], d
    c.max_position_embeddings = cfg["max_position_embeddings"]
    inv, scaling = ROPE_INIT_FUNCTIONS[rope["rope_type"]](c, None)
    if inv.numel() != d // 2:
        raise SystemExit(f"griffin head: partial rotary ({inv.numel()} of {d // 2} frequencies) is not supported")
    return inv.float(), float(scaling)


def _torch():
    import torch
    return torch


def build_head(cfg, embed_weight, draft_ids=None, lm_head_weight=None):
    """A GriffinHead (torch.nn.Module). embed_weight: the target's [V, H] input embedding (frozen buffer);
    lm_head_weight: the target's [V, H] output layer (frozen buffer), None for a target with tied embeddings.
    draft_ids: sorted int array of the draft vocabulary (None = full vocabulary)."""
    torch = _torch()
    nn = torch.nn

    class RMSNorm(nn.Module):
        def __init__(self, n, eps):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))
            self.eps = eps

        def forward(self, x):
            var = x.pow(2).mean(-1, keepdim=True)
            return self.weight * (x * torch.rsqrt(var + self.eps))

    class GriffinHead(nn.Module):
        def __init__(self):
            super().__init__()
            H, I, Ie = cfg["hidden_size"], cfg["intermediate_size"], cfg["emlp_size"]
            nh, nkv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
            eps = cfg["rms_norm_eps"]
            self.cfg = cfg
            self.register_buffer("embed", embed_weight.detach().clone().float(), persistent=False)
            # the target's output layer: its own for an untied target (Llama 3 8B, Qwen2.5 7B), else the embedding
            # (the same tensor: a [V,H] table is ~0.5 GB float32 at a 151,936-token vocabulary and H = 896)
            self.tied = lm_head_weight is None
            out = self.embed if self.tied else lm_head_weight.detach().clone().float()
            self.register_buffer("lm_head", out, persistent=False)
            if draft_ids is not None:
                ids = torch.as_tensor(np.asarray(draft_ids), dtype=torch.long)
                self.register_buffer("draft_ids", ids, persistent=False)
            else:
                self.draft_ids = None
            self.fc = nn.Linear(2 * H, H, bias=True)
            self.fusion = cfg.get("token_guided_fusion", True)
            if self.fusion:
                self.norm_u = RMSNorm(H, eps)
                self.norm_s = RMSNorm(H, eps)
                self.emlp_up = nn.Linear(2 * H, Ie, bias=False)
                self.emlp_down = nn.Linear(Ie, H, bias=False)
            self.q_proj = nn.Linear(H, nh * d, bias=False)
            self.k_proj = nn.Linear(H, nkv * d, bias=False)
            self.v_proj = nn.Linear(H, nkv * d, bias=False)
            self.o_proj = nn.Linear(nh * d, H, bias=False)
            self.post_attention_layernorm = RMSNorm(H, eps)
            self.gate_proj = nn.Linear(H, I, bias=False)
            self.up_proj = nn.Linear(H, I, bias=False)
            self.down_proj = nn.Linear(I, 2 * H, bias=False)
            inv, self.rope_scaling = rope_frequencies(cfg)
            self.register_buffer("inv_freq", inv, persistent=False)
            self.nh, self.nkv, self.d, self.H = nh, nkv, d, H

        # -- pieces -------------------------------------------------------------------------------
        def token_tables(self):
            """The fusion's terms that depend on the token only (the embedding is frozen), as tables [V, .]:
            fc_tok = E W_fc[:, :H]^T + b_fc and emlp_tok = norm_s(E) W_up[:, H:]^T. The ONNX graph gathers rows of
            these instead of multiplying the embedding row by 2H x H and 2H x I_e weights (exact algebra)."""
            E, H = self.embed, self.H
            out = {"fc_tok": E @ self.fc.weight[:, :H].t() + self.fc.bias}
            if self.fusion:
                out["emlp_tok"] = self.norm_s(E) @ self.emlp_up.weight[:, H:].t()
            return out

        def fuse(self, ids, h, tables=None):
            """ids [B,s], h [B,s,H] -> u [B,s,H] (tables: token_tables(), possibly rounded, as the graph uses)"""
            H = self.H
            if tables is None:
                e = self.embed[ids]
                u0 = self.fc(torch.cat([e, h], -1))
                if not self.fusion:
                    return u0
                z = torch.cat([self.norm_s(self.norm_u(u0)), self.norm_s(e)], -1)
                return u0 + self.emlp_down(torch.nn.functional.silu(self.emlp_up(z)))
            u0 = tables["fc_tok"][ids] + h @ self.fc.weight[:, H:].t()
            if not self.fusion:
                return u0
            up = self.norm_s(self.norm_u(u0)) @ self.emlp_up.weight[:, :H].t() + tables["emlp_tok"][ids]
            return u0 + self.emlp_down(torch.nn.functional.silu(up))

        def rope(self, x, pos):
            """x [B,n,s,d], pos [B,s] -> rotated x"""
            fr = pos.float()[..., None] * self.inv_freq  # [B,s,d/2]
            emb = torch.cat([fr, fr], -1)[:, None]  # [B,1,s,d]
            cos, sin = emb.cos() * self.rope_scaling, emb.sin() * self.rope_scaling
            x1, x2 = x[..., : self.d // 2], x[..., self.d // 2:]
            return x * cos + torch.cat([-x2, x1], -1) * sin

        def qkv(self, u, pos):
            """u [B,s,H] -> q [B,nh,s,d], k [B,nkv,s,d] (rotated), v [B,nkv,s,d]"""
            B, s, _ = u.shape
            q = self.q_proj(u).view(B, s, self.nh, self.d).transpose(1, 2)
            k = self.k_proj(u).view(B, s, self.nkv, self.d).transpose(1, 2)
            v = self.v_proj(u).view(B, s, self.nkv, self.d).transpose(1, 2)
            return self.rope(q, pos), self.rope(k, pos), v

        def attend(self, q, k, v, bias):
            """q [B,nh,s,d], k/v [B,nkv,T,d], bias additive [B or 1,1,s,T] -> [B,s,nh*d]"""
            rep = self.nh // self.nkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            sc = torch.matmul(q, k.transpose(-1, -2)) * (self.d ** -0.5) + bias
            o = torch.matmul(torch.softmax(sc, -1), v)
            B, _, s, _ = o.shape
            return o.transpose(1, 2).reshape(B, s, self.nh * self.d)

        def tail(self, u, attn):
            """-> predict [B,s,H], regress [B,s,H]"""
            a = u + self.o_proj(attn)
            n = self.post_attention_layernorm(a)
            m = self.down_proj(torch.nn.functional.silu(self.gate_proj(n)) * self.up_proj(n))
            return a + m[..., : self.H], a + m[..., self.H:]

        def logits(self, predict):
            """Full-width logits [.., V]; with a draft vocabulary the other tokens read MASKED."""
            if self.draft_ids is None:
                return predict @ self.lm_head.t()
            small = predict @ self.lm_head[self.draft_ids].t()
            full = torch.full(predict.shape[:-1] + (self.lm_head.shape[0],), MASKED, dtype=predict.dtype)
            return full.index_copy(-1, self.draft_ids, small)

        def small_logits(self, predict):
            """Logits over the draft vocabulary only (training)."""
            if self.draft_ids is None:
                return predict @ self.lm_head.t()
            return predict @ self.lm_head[self.draft_ids].t()

        # -- the engine's call (what the ONNX graph computes) ------------------------------------
        def forward(self, input_ids, hidden_states, position_ids, attention_bias, past_key=None, past_value=None,
                    tables=None):
            u = self.fuse(input_ids, hidden_states, tables)
            q, k, v = self.qkv(u, position_ids)
            if past_key is not None and past_key.shape[2] > 0:
                k = torch.cat([past_key, k], 2)
                v = torch.cat([past_value, v], 2)
            predict, regress = self.tail(u, self.attend(q, k, v, attention_bias))
            return self.logits(predict), regress, k, v

    return GriffinHead()


def trainable_params(head):
    return sum(p.numel() for p in head.parameters() if p.requires_grad)


def head_state_dict(head):
    return {k: v.detach().clone() for k, v in head.state_dict().items()}


# ------------------------------------------------------------------------------------------------ ONNX


def export_onnx(head, path, fp16_weights=True, attention="standard"):
    """Writes the head as one ONNX graph (see the module docstring); returns the model proto."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cfg = head.cfg
    H, nh, nkv, d = head.H, head.nh, head.nkv, head.d
    rep = nh // nkv
    eps = cfg["rms_norm_eps"]
    inits, nodes = [], []

    def w(name, arr, keep32=False):
        arr = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
        if fp16_weights and not keep32 and arr.size >= FP16_MIN_ELEMENTS:
            inits.append(numpy_helper.from_array(arr.astype(np.float16), name + "__fp16"))
            nodes.append(helper.make_node("Cast", [name + "__fp16"], [name], to=TensorProto.FLOAT, name=name + "__to_fp32"))
        else:
            inits.append(numpy_helper.from_array(arr, name))
        return name

    def c(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(op, ins, outs=None, domain=None, **kw):
        node.n += 1
        outs = outs or [f"{op.lower()}_{node.n}"]
        nodes.append(helper.make_node(op, ins, outs, name=f"{op}_{node.n}", domain=domain, **kw))
        return outs[0] if len(outs) == 1 else outs
    node.n = 0

    def t(lin):  # Linear weight [out, in] -> MatMul operand [in, out]
        return lin.weight.detach().numpy().T

    def linear(x, name, lin):
        y = node("MatMul", [x, w(name + ".weight_t", t(lin))])
        if lin.bias is not None:
            y = node("Add", [y, w(name + ".bias", lin.bias.detach().numpy())])
        return y

    axes_last = c("axes_last", np.array([-1], dtype=np.int64))
    eps_c = c("rms_eps", np.array(eps, dtype=np.float32))

    two = c("pow_2", np.array(2.0, dtype=np.float32))

    def rmsnorm(x, name, norm):
        # Pow -> ReduceMean -> Add -> Sqrt -> Div -> Mul: the pattern ONNX Runtime fuses into one
        # SimplifiedLayerNormalization at session creation
        var = node("ReduceMean", [node("Pow", [x, two]), axes_last], keepdims=1)
        y = node("Div", [x, node("Sqrt", [node("Add", [var, eps_c])])])
        return node("Mul", [y, w(name + ".weight", norm.weight.detach().numpy())])

    embed = head.embed.detach().numpy()
    lm_head = head.lm_head.detach().numpy()

    def gather_rows(name, table):
        """rows of a [V, n] table for input_ids -> [1,s,n] float32; a float16-stored table is gathered first and
        the s rows cast (a Cast of the whole table would be folded by ONNX Runtime into a float32 copy)"""
        arr = np.ascontiguousarray(np.asarray(table, dtype=np.float32))
        if fp16_weights and arr.size >= FP16_MIN_ELEMENTS:
            inits.append(numpy_helper.from_array(arr.astype(np.float16), name + "__fp16"))
            return node("Cast", [node("Gather", [name + "__fp16", "input_ids"], axis=0)], to=TensorProto.FLOAT)
        return node("Gather", [w(name, arr), "input_ids"], axis=0)

    fc_w = head.fc.weight.detach().numpy()  # [H, 2H]: columns :H read the token's embedding, H: the feature
    up_w = head.emlp_up.weight.detach().numpy() if head.fusion else None  # [I_e, 2H]: :H the fused u0, H: the embedding
    if cfg.get("token_tables", "fold") == "fold":
        # the token-only terms as tables gathered by id: fc_tok [V,H] (bias included), emlp_tok [V,I_e]
        with _torch().no_grad():
            tables = {k: v.numpy() for k, v in head.token_tables().items()}
        fc_tok = gather_rows("fc_tok", tables["fc_tok"])  # [1,s,H]
        emlp_tok = gather_rows("emlp_tok", tables["emlp_tok"]) if head.fusion else None  # [1,s,I_e]
    else:
        # the same terms from the embedding row e [1,s,H]: fc_tok = e W_fc,emb^T + b, emlp_tok = norm_s(e) W_up,emb^T
        e = gather_rows("embed_tokens", embed)
        fc_tok = node("Add", [node("MatMul", [e, w("fc_emb.weight_t", fc_w[:, :H].T)]),
                              w("fc.bias", head.fc.bias.detach().numpy())])
        emlp_tok = None
        if head.fusion:
            emlp_tok = node("MatMul", [rmsnorm(e, "norm_s", head.norm_s), w("emlp_up_emb.weight_t", up_w[:, H:].T)])
    # u0 = fc([e; h]) = fc_tok + h W_fc,h^T
    u0 = node("Add", [fc_tok, node("MatMul", ["hidden_states", w("fc_h.weight_t", fc_w[:, H:].T)])])
    if head.fusion:
        ns = rmsnorm(rmsnorm(u0, "norm_u", head.norm_u), "norm_s", head.norm_s)
        up = node("Add", [node("MatMul", [ns, w("emlp_up_u.weight_t", up_w[:, :H].T)]), emlp_tok])
        act = node("Mul", [up, node("Sigmoid", [up])])
        u = node("Add", [u0, linear(act, "emlp_down", head.emlp_down)])
    else:
        u = u0

    # q, k, v in one MatMul
    wqkv = np.concatenate([t(head.q_proj), t(head.k_proj), t(head.v_proj)], 1)
    qkv = node("MatMul", [u, w("qkv_proj.weight_t", wqkv)])
    qf, kf, vf = node("Split", [qkv, c("split_qkv", np.array([nh * d, nkv * d, nkv * d], np.int64))],
                      ["q_flat", "k_flat", "v_flat"], axis=-1)
    if attention == "fused":
        # ONNX Runtime's contrib RotaryEmbedding + GroupQueryAttention, as the target's fused graph (export_fused.py):
        # the cache is declared full (seqlens_k = T - 1), so GroupQueryAttention's own causal rule is by physical
        # slot (row i never sees a new slot after it); the engine's bias does the rest. Tree nodes must therefore be
        # written after their ancestors, as for the target's packed graph.
        P = cfg["max_position_embeddings"]
        fr = np.outer(np.arange(P, dtype=np.float64), head.inv_freq.detach().numpy().astype(np.float64))
        sc_ = head.rope_scaling
        rotary = ["position_ids", c("rotary.cos_cache", (np.cos(fr) * sc_).astype(np.float32)),
                  c("rotary.sin_cache", (np.sin(fr) * sc_).astype(np.float32))]
        qr = node("RotaryEmbedding", [qf] + rotary, domain=MS, num_heads=nh, interleaved=0)
        kr = node("RotaryEmbedding", [kf] + rotary, domain=MS, num_heads=nkv, interleaved=0)
        total = node("Slice", [node("Shape", ["attention_bias"]), c("sl_3", np.array([3], np.int64)),
                               c("sl_4", np.array([4], np.int64))])
        total32 = node("Cast", [total], to=TensorProto.INT32)
        seqlens = node("Sub", [total32, c("one_i32", np.array([1], np.int32))])
        total_scalar = node("Squeeze", [total32, c("axis0", np.array([0], np.int64))])
        bias = node("Max", ["attention_bias", c("bias_floor", np.array(MASKED, np.float32))])
        o = node("GroupQueryAttention", [qr, kr, vf, "past_key_values.0.key", "past_key_values.0.value", seqlens,
                                         total_scalar, "", "", "", bias],
                 ["attn", "present.0.key", "present.0.value"], domain=MS, num_heads=nh, kv_num_heads=nkv,
                 scale=float(d ** -0.5))[0]
    else:
        # rotary: cos/sin [1,1,s,d] computed from position_ids and the target's inverse frequencies (no table over
        # max_position_embeddings: 134 MB at 131,072 positions and head_dim 128)
        ax1 = c("axes_1", np.array([1], dtype=np.int64))
        pos_f = node("Unsqueeze", [node("Cast", ["position_ids"], to=TensorProto.FLOAT), axes_last])  # [1,s,1]
        fr = node("Mul", [pos_f, c("rotary.inv_freq", head.inv_freq.detach().numpy().astype(np.float32))])  # [1,s,d/2]
        emb = node("Concat", [fr, fr], axis=-1)  # [1,s,d]
        cos, sin = node("Cos", [emb]), node("Sin", [emb])
        if head.rope_scaling != 1.0:
            scale = c("rotary.attention_scaling", np.array(head.rope_scaling, dtype=np.float32))
            cos, sin = node("Mul", [cos, scale]), node("Mul", [sin, scale])
        cos, sin = node("Unsqueeze", [cos, ax1]), node("Unsqueeze", [sin, ax1])
        half = d // 2

        def rope(xh):  # [1,n,s,d]
            x1, x2 = node("Split", [xh, c("split_half", np.array([half, half], np.int64))], [f"{xh}_x1", f"{xh}_x2"], axis=-1)
            rot = node("Concat", [node("Neg", [x2]), x1], axis=-1)
            return node("Add", [node("Mul", [xh, cos]), node("Mul", [rot, sin])])

        def heads(y, n):  # [1,s,n*d] -> [1,n,s,d]
            r = node("Reshape", [y, c(f"shape_heads_{n}", np.array([0, 0, n, d], np.int64))])
            return node("Transpose", [r], perm=[0, 2, 1, 3])

        q = rope(heads(qf, nh))
        k = rope(heads(kf, nkv))
        v = heads(vf, nkv)
        node("Concat", ["past_key_values.0.key", k], ["present.0.key"], axis=2)
        node("Concat", ["past_key_values.0.value", v], ["present.0.value"], axis=2)
        # GQA without repeating k/v: q [1,nkv,rep*s,d] (query head j*rep+r of kv head j), scores [1,nkv,rep*s,T]
        qg = node("Reshape", [q, c("shape_qg", np.array([1, nkv, -1, d], np.int64))])
        kt = node("Transpose", ["present.0.key"], perm=[0, 1, 3, 2])
        sc = node("Mul", [node("MatMul", [qg, kt]), c("attn_scale", np.array(d ** -0.5, dtype=np.float32))])
        # bias [1,1,s,T] -> broadcast over (kv, rep): scores viewed as [1,nkv,rep,s,T]
        s_t = node("Slice", [node("Shape", ["attention_bias"]), c("sl_2", np.array([2], np.int64)),
                             c("sl_4", np.array([4], np.int64))])  # [s, T]
        sc5 = node("Reshape", [sc, node("Concat", [c("shape_sc5_head", np.array([1, nkv, rep], np.int64)), s_t], axis=0)])
        sc5 = node("Add", [sc5, node("Unsqueeze", ["attention_bias", ax1])])
        p = node("Softmax", [sc5], axis=-1)
        t_dim = node("Slice", [s_t, c("sl_1", np.array([1], np.int64)), c("sl_2b", np.array([2], np.int64))])
        pg = node("Reshape", [p, node("Concat", [c("shape_pg_head", np.array([1, nkv, -1], np.int64)), t_dim], axis=0)])
        o = node("MatMul", [pg, "present.0.value"])  # [1,nkv,rep*s,d]
        o = node("Reshape", [o, c("shape_o4", np.array([1, nh, -1, d], np.int64))])
        o = node("Transpose", [o], perm=[0, 2, 1, 3])
        o = node("Reshape", [o, c("shape_o3", np.array([0, 0, nh * d], np.int64))])
    a = node("Add", [u, linear(o, "o_proj", head.o_proj)])
    n = rmsnorm(a, "post_attention_layernorm", head.post_attention_layernorm)
    I = cfg["intermediate_size"]
    gu = node("MatMul", [n, w("gate_up_proj.weight_t", np.concatenate([t(head.gate_proj), t(head.up_proj)], 1))])
    g, up_ = node("Split", [gu, c("split_gu", np.array([I, I], np.int64))], ["gate", "up"], axis=-1)
    mlp = node("Mul", [node("Mul", [g, node("Sigmoid", [g])]), up_])
    m = linear(mlp, "down_proj", head.down_proj)
    m_pred, m_reg = node("Split", [m, c("split_2h", np.array([H, H], np.int64))], ["m_predict", "m_regress"], axis=-1)
    predict = node("Add", [a, m_pred])
    node("Add", [a, m_reg], ["regress"])
    # logits_to_keep = k: the lm_head reads the last k rows only (k = 0: all of them, as the target's graph), so a
    # catch-up over many committed pairs (a prompt) computes one row of logits, not one per pair
    keep_start = node("Neg", [node("Reshape", ["logits_to_keep", c("shape_keep", np.array([1], np.int64))])])
    predict = node("Slice", [predict, keep_start, c("keep_end", np.array([np.iinfo(np.int64).max], np.int64)),
                             c("keep_axis", np.array([1], np.int64))])
    if head.draft_ids is None:
        node("MatMul", [predict, w("lm_head.weight_t", lm_head.T)], ["logits"])
    else:
        ids = head.draft_ids.numpy()
        small_t = w("draft_lm_head.weight_t", lm_head[ids].T)
        small = node("MatMul", [predict, small_t])  # [1,s,Vd]
        shape = node("Shape", [small])
        one = c("shape_one", np.array([1], np.int64))
        pad_shape = node("Concat", [node("Slice", [shape, c("sl_0", np.array([0], np.int64)),
                                                   c("sl_2", np.array([2], np.int64))]), one], axis=0)
        pad = node("Expand", [c("masked_value", np.array([MASKED], np.float32)), pad_shape])
        wide = node("Concat", [small, pad], axis=-1)  # [1,s,Vd+1]; column Vd = MASKED
        V = embed.shape[0]
        where = np.full(V, len(ids), dtype=np.int64)
        where[ids] = np.arange(len(ids))
        node("Gather", [wide, c("draft_index_of_token", where)], ["logits"], axis=2)

    # de-duplicate initializers (norm_s is written twice)
    seen, uniq = set(), []
    for i in inits:
        if i.name not in seen:
            seen.add(i.name)
            uniq.append(i)
    seen_nodes, uniq_nodes = set(), []
    for nd in nodes:
        key = (nd.op_type, tuple(nd.output))
        if nd.op_type == "Cast" and key in seen_nodes:
            continue
        seen_nodes.add(key)
        uniq_nodes.append(nd)
    V = embed.shape[0]
    graph = helper.make_graph(
        uniq_nodes, "griffin_head",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "sequence_length"]),
         helper.make_tensor_value_info("hidden_states", TensorProto.FLOAT, [1, "sequence_length", H]),
         helper.make_tensor_value_info("position_ids", TensorProto.INT64, [1, "sequence_length"]),
         helper.make_tensor_value_info("attention_bias", TensorProto.FLOAT, [1, 1, "sequence_length", "total_sequence_length"]),
         helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT, [1, nkv, "past_sequence_length", d]),
         helper.make_tensor_value_info("past_key_values.0.value", TensorProto.FLOAT, [1, nkv, "past_sequence_length", d]),
         helper.make_tensor_value_info("logits_to_keep", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "kept_length", V]),
         helper.make_tensor_value_info("regress", TensorProto.FLOAT, [1, "sequence_length", H]),
         helper.make_tensor_value_info("present.0.key", TensorProto.FLOAT, [1, nkv, "total_sequence_length", d]),
         helper.make_tensor_value_info("present.0.value", TensorProto.FLOAT, [1, nkv, "total_sequence_length", d])],
        initializer=uniq)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(MS, 1)],
                              producer_name="specula_tools.griffin_model")
    model.ir_version = 10
    model.doc_string = ("GRIFFIN draft head: row t takes input_ids = x_{t+1}, hidden_states = f_t (target last_hidden_state or "
                        "the parent's regress), position_ids = t; outputs logits for x_{t+2} and regress ~ f_{t+1}")
    if sum(len(i.raw_data) for i in uniq) < EXTERNAL_DATA_BYTES:
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, path)
    else:
        # past protobuf's 2 GB: the weights go to model.onnx.data next to the graph (ONNX Runtime reads it from the path)
        for f in (path + ".data",):
            if os.path.exists(f):
                os.remove(f)
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=os.path.basename(path) + ".data", size_threshold=1024)
        onnx.checker.check_model(path, full_check=True)
    return model


# ------------------------------------------------------------------------------------------------ directory


COPY_FROM_TARGET = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")


def write_dir(head, out_dir, target_dir, info=None, fp16_weights=True, attention="standard"):
    """model.onnx + config.json + the target's tokenizer/generation files (+ griffin.json when info is given)."""
    import shutil

    os.makedirs(out_dir, exist_ok=True)
    export_onnx(head, os.path.join(out_dir, "model.onnx"), fp16_weights=fp16_weights, attention=attention)
    with open(os.path.join(out_dir, "config.json"), "w") as fh:
        json.dump(head.cfg, fh, indent=2)
        fh.write("\n")
    for f in COPY_FROM_TARGET:
        shutil.copy(os.path.join(target_dir, f), os.path.join(out_dir, f))
    if info is not None:
        with open(os.path.join(out_dir, "griffin.json"), "w") as fh:
            json.dump(info, fh, indent=2)
            fh.write("\n")


def ort_session(path, threads=1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def head_feeds(ids, hidden, pos, bias, pk, pv, keep=0):
    return {"input_ids": np.asarray(ids, np.int64).reshape(1, -1),
            "hidden_states": np.asarray(hidden, np.float32).reshape(1, -1, hidden.shape[-1]),
            "position_ids": np.asarray(pos, np.int64).reshape(1, -1),
            "attention_bias": np.asarray(bias, np.float32),
            "past_key_values.0.key": pk, "past_key_values.0.value": pv,
            "logits_to_keep": np.array(keep, dtype=np.int64)}


def verify_onnx(head, path, seed=0, prefill=40, tol=1e-3, fp16_weights=True):
    """ORT vs torch: a prefill of ``prefill`` committed pairs (causal bias, past 0), then a 3-node tree step over that
    past (root-child a, its child b, and a sibling c of a: non-causal bias). Returns (max diff logits, max diff
    regress, max diff present). The torch reference uses the float16-rounded weights the graph stores."""
    torch = _torch()
    cfg = head.cfg
    H, nkv, d, V = cfg["hidden_size"], cfg["num_key_value_heads"], cfg["head_dim"], cfg["vocab_size"]
    rnd = (lambda x: x.half().float()) if fp16_weights else (lambda x: x)
    ref = build_head(cfg, rnd(head.embed), None if head.draft_ids is None else head.draft_ids.numpy(),
                     None if head.tied else rnd(head.lm_head))
    sd = head.state_dict()
    with torch.no_grad():
        for k, v in ref.state_dict().items():
            src = sd[k]
            ref.state_dict()[k].copy_(rnd(src) if src.numel() >= FP16_MIN_ELEMENTS else src)
    ref.eval()
    tables = None  # 'graph' token tables: the reference gathers the rounded embedding as the graph does
    if cfg.get("token_tables", "fold") == "fold":
        with torch.no_grad():
            tables = {k: (v.half().float() if fp16_weights else v) for k, v in head.token_tables().items()}
    rng = np.random.default_rng(seed)
    sess = ort_session(path, 1)
    ids = rng.integers(0, V, prefill)
    hid = rng.standard_normal((1, prefill, H)).astype(np.float32)
    pos = np.arange(prefill)
    bias = np.where(np.triu(np.ones((prefill, prefill), bool), 1), MASKED, 0.0).astype(np.float32)[None, None]
    empty = np.zeros((1, nkv, 0, d), np.float32)
    out1 = sess.run(None, head_feeds(ids, hid, pos, bias, empty, empty))
    # tree: node 0 (child of the last committed row, position prefill), node 1 (child of 0), node 2 (sibling of 0)
    tids = rng.integers(0, V, 3)
    thid = np.concatenate([out1[1][:, -1:], rng.standard_normal((1, 1, H)).astype(np.float32), out1[1][:, -1:]], 1)
    tpos = np.array([prefill, prefill + 1, prefill])
    tb = np.zeros((1, 1, 3, prefill + 3), np.float32)
    tb[0, 0, :, prefill:] = MASKED
    for r, anc in enumerate([[0], [0, 1], [2]]):
        for j in anc:
            tb[0, 0, r, prefill + j] = 0.0
    tb[0, 0, :, 5] = MASKED  # a hole in the committed past, as rolled-back slots leave
    out2 = sess.run(None, head_feeds(tids, thid, tpos, tb, out1[2], out1[3]))
    with torch.no_grad():
        T = torch.from_numpy
        r1 = ref(T(ids)[None], T(hid), T(pos)[None], T(bias), tables=tables)
        r2 = ref(T(tids)[None], T(thid), T(tpos)[None], T(tb), r1[2], r1[3], tables=tables)
    dl = max(float(np.abs(out1[0] - r1[0].numpy()).max()), float(np.abs(out2[0] - r2[0].numpy()).max()))
    dr = max(float(np.abs(out1[1] - r1[1].numpy()).max()), float(np.abs(out2[1] - r2[1].numpy()).max()))
    dp = max(float(np.abs(out2[2] - r2[2].numpy()).max()), float(np.abs(out2[3] - r2[3].numpy()).max()))
    shapes_ok = (out2[0].shape == (1, 3, V) and out2[1].shape == (1, 3, H) and out2[2].shape == (1, nkv, prefill + 3, d))
    return dict(max_abs_diff_logits=dl, max_abs_diff_regress=dr, max_abs_diff_present=dp, shapes_ok=bool(shapes_ok),
                ok=bool(dl <= tol and dr <= tol and shapes_ok))


def _bias(s, past):
    b = np.zeros((1, 1, s, past + s), np.float32)
    b[0, 0, :, past:] = np.where(np.triu(np.ones((s, s), bool), 1), MASKED, 0.0)
    return b


def head_timing_feeds(cfg, s, past, seed=0):
    rng = np.random.default_rng(seed)
    nkv, d, H = cfg["num_key_value_heads"], cfg["head_dim"], cfg["hidden_size"]
    return head_feeds(rng.integers(0, cfg["vocab_size"], s), rng.standard_normal((1, s, H)).astype(np.float32),
                      np.arange(past, past + s), _bias(s, past),
                      rng.standard_normal((1, nkv, past, d)).astype(np.float32),
                      rng.standard_normal((1, nkv, past, d)).astype(np.float32))


def draft_timing_feeds(model_dir, sess, s, past, seed=0):
    """Random feeds of one call of an exported decoder (a draft's packed graph, or a target's model.onnx: packed
    attention_bias or attention_mask, float16 or float32 KV, as its inputs say) over `past` cached positions."""
    with open(os.path.join(model_dir, "config.json")) as fh:
        dc = json.load(fh)
    d = dc.get("head_dim") or dc["hidden_size"] // dc["num_attention_heads"]
    inputs = {i.name: i for i in sess.get_inputs()}
    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(0, dc["vocab_size"], (1, s)).astype(np.int64),
             "position_ids": np.arange(past, past + s, dtype=np.int64)[None]}
    if "attention_bias" in inputs:
        feeds["attention_bias"] = _bias(s, past)
    if "attention_mask" in inputs:
        feeds["attention_mask"] = np.ones((1, past + s), dtype=np.int64)
    if "logits_to_keep" in inputs:
        feeds["logits_to_keep"] = np.array(0, dtype=np.int64)  # every row, as the head returns
    for name, i in inputs.items():
        if name.startswith("past_key_values."):
            dt = np.float16 if "float16" in i.type else np.float32
            feeds[name] = rng.standard_normal((1, dc.get("num_key_value_heads") or dc["num_attention_heads"], past, d)).astype(dt)
    return feeds


def time_round_robin(cases, runs=300, warmup=30):
    """cases: {name: (session, feeds)}. One call of each in turn per round, so load from other processes on a
    shared machine falls on all of them alike; returns {name: median ms}."""
    for sess, feeds in cases.values():
        for _ in range(warmup):
            sess.run(None, feeds)
    ts = {k: [] for k in cases}
    for _ in range(runs):
        for k, (sess, feeds) in cases.items():
            t0 = time.perf_counter()
            sess.run(None, feeds)
            ts[k].append(time.perf_counter() - t0)
    return {k: 1000.0 * float(np.median(v)) for k, v in ts.items()}
