"""What ``export`` does per model family: which families it supports, how their masks reach the layers, and the
sliding-window mask that counts logical positions.

The wrapper in export_core builds one boolean ``visible`` [b, 1, s, past+s] (causal by physical slot and
attention_mask, or, with --packed, ``attention_bias == 0``). Full-attention layers get it as an additive mask.
Sliding-window layers get ``visible`` narrowed to the last ``window`` visible slots of each query row:

    slot k is in query q's window  <=>  fewer than ``window`` slots after k are visible to q

Why this is the window in *logical* positions: the engine shows a query exactly its own sequence's tokens at
logical positions 0..q (rolled-back drafts, pads and other sequences' slots are masked holes; new tokens get
position_ids = the sequence's logical length + j), in increasing physical order. So the visible slots after k
are the tokens at positions k+1..q, and their count is q - pos(k): the condition is transformers'
``q - pos(k) < window``. A physical-slot window would instead drop old tokens once holes pile up after them.
The same holds per row of a --packed bias (a sequence's slots are its own segments; a draft tree node sees its
ancestors), so the packed graph needs no extra input. The condition needs no position_ids at all, which also
keeps it right if a caller ever drops a sequence's oldest tokens.
"""
import torch

# model_type -> short description (README / error messages). Everything else is refused by name.
SUPPORTED = {
    "llama": "Llama 1/2/3.x (rope_type default or llama3), SmolLM",
    "qwen2": "Qwen2 / Qwen2.5 (full attention; use_sliding_window=false)",
    "gpt2": "GPT-2",
    "qwen3": "Qwen3 (q/k RMSNorm)",
    "mistral": "Mistral (sliding window on every layer)",
    "phi3": "Phi-3 / Phi-3.5 / Phi-4-mini (fused qkv and gate_up, optional sliding window)",
    "gemma2": "Gemma-2 (logit soft-capping, alternating sliding-window layers, scaled embeddings)",
    "gemma3_text": "Gemma-3 text-only (Gemma3ForCausalLM: q/k norms, sliding-window layers, scaled embeddings)",
}

# Families whose attention ignores sdpa extras they need (Gemma-2's attention logit soft-capping): eager.
EAGER = ("gemma2",)


class UnsupportedFamily(SystemExit):
    pass


def check_supported(config):
    """Refuses (SystemExit with a message) a model_type that export does not support."""
    mt = getattr(config, "model_type", None)
    if mt not in SUPPORTED:
        names = ", ".join(sorted(SUPPORTED))
        raise UnsupportedFamily(f"export: model_type {mt!r} is not supported; supported model_type values: {names}")
    if mt == "qwen2" and getattr(config, "use_sliding_window", False):
        raise UnsupportedFamily("export: qwen2 with use_sliding_window=true is not supported (max_window_layers "
                                "semantics differ between transformers versions); supported: use_sliding_window"
                                "=false")


def attn_implementation(model_type):
    return "eager" if model_type in EAGER else "sdpa"


def layer_types(config):
    """'full_attention' / 'sliding_attention' per decoder layer."""
    c = config.get_text_config(decoder=True)
    types = getattr(c, "layer_types", None)
    if types is None:
        kind = "sliding_attention" if getattr(c, "sliding_window", None) is not None else "full_attention"
        types = [kind] * c.num_hidden_layers
    types = list(types)[:c.num_hidden_layers]
    for t in types:
        if t not in ("full_attention", "sliding_attention"):
            raise UnsupportedFamily(f"export: layer type {t!r} is not supported (only full_attention and "
                                    f"sliding_attention)")
    return types


def sliding_window(config):
    """The window (keys with q - k < window are seen) if any layer slides, else None."""
    if "sliding_attention" not in layer_types(config):
        return None
    return int(config.get_text_config(decoder=True).sliding_window)


def has_sliding_layers(config):
    return sliding_window(config) is not None


def window_visible(visible, window):
    """visible [b, 1, s, T] bool -> the slots within the last ``window`` visible slots of each query row."""
    v = visible.to(torch.int64)
    after = v.sum(dim=-1, keepdim=True) - torch.cumsum(v, dim=-1)  # visible slots strictly after each slot
    return visible & (after < window)


def layer_masks(config, visible, to_bias):
    """What the base model takes as attention_mask: one 4D additive mask when all layers are alike (Llama,
    Mistral: their forward takes one mask for every layer), else a dict by layer type (Qwen2/3, Gemma: their
    forward takes ``{layer_type: mask}`` as is). ``to_bias`` turns a boolean [b,1,s,T] into the additive mask."""
    types = set(layer_types(config))
    window = sliding_window(config)
    if types == {"full_attention"}:
        return to_bias(visible)
    sliding = to_bias(window_visible(visible, window))
    if types == {"sliding_attention"}:
        return sliding
    return {"full_attention": to_bias(visible), "sliding_attention": sliding}


def final_logits(config, logits):
    """Final logit soft-capping (Gemma-2/3), applied by their *ForCausalLM, not by the base model."""
    cap = getattr(config.get_text_config(decoder=True), "final_logit_softcapping", None)
    if cap is None:
        return logits
    return torch.tanh(logits / cap) * cap
