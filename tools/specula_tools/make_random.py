"""``make-random``: write a random-init Hugging Face causal LM directory of a family ``export`` supports.

    python -m specula_tools make-random --family llama|llama3|qwen2|qwen3|gpt2|mistral|phi3|gemma2|gemma3 OUT_HF_DIR
        [--tokenizer TOKENIZER_DIR] [--layers N --hidden N --heads N --kv-heads N --intermediate N --vocab N
        --seed N --init-std X] [--max-positions N] [--sliding-window N] [--head-dim N]

``gemma2`` / ``gemma3`` (model_type gemma3_text) alternate sliding and full layers (window 16), tie embeddings and
soft-cap the final logits at 30 (Gemma-2 also its attention scores, at 5 here).
``llama3`` is model_type llama with Llama 3.1's ``rope_type: llama3`` frequency scaling (factor 8, low/high
frequency factors 1/4, original context max_positions/8, rope_theta 500000). ``mistral`` and ``phi3`` get a
sliding window on every layer (--sliding-window, default 16: small, so tests cross it; 0: no window, as Mistral 7B
v0.2 and later).

Without --tokenizer a small byte-level BPE (vocab 512) is trained, deterministically, on a fixed slice of the
Python standard library sources. The directory gets save_pretrained weights + config, tokenizer files and a chat
template for the family (Llama-3-style headers for llama, ChatML for qwen2, a plain one for gpt2). These templates
are simple templates *in the style of* the family, not copies of any released model's template.
"""
import argparse
import os
import sys
import sysconfig

# The BPE trainer is deterministic for a given input; pin rayon to one thread anyway (2-core machines).
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FAMILY_DEFAULTS = {
    # layers, hidden, heads, kv_heads, intermediate
    "llama": dict(layers=2, hidden=64, heads=4, kv_heads=4, intermediate=128),
    "qwen2": dict(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128),
    "gpt2": dict(layers=2, hidden=64, heads=4, kv_heads=4, intermediate=256),
    "llama3": dict(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128),
    "qwen3": dict(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128),
    "mistral": dict(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128),
    "phi3": dict(layers=2, hidden=64, heads=4, kv_heads=4, intermediate=128),
    "gemma2": dict(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128),
    "gemma3": dict(layers=2, hidden=64, heads=4, kv_heads=2, intermediate=128),
}

DEFAULT_SLIDING_WINDOW = 16
# families whose attention takes head_dim from the config (may differ from hidden / heads)
HEAD_DIM_FAMILIES = ("llama", "llama3", "qwen3", "mistral", "gemma2", "gemma3")

# Special tokens per family: (list of special tokens, bos, eos, pad, add_bos)
FAMILY_SPECIALS = {
    "llama": (["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
              "<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>", True),
    "qwen2": (["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|im_end|>", "<|endoftext|>", False),
    "gpt2": (["<|endoftext|>"], "<|endoftext|>", "<|endoftext|>", "<|endoftext|>", False),
    "mistral": (["<unk>", "<s>", "</s>", "[INST]", "[/INST]"], "<s>", "</s>", "</s>", True),
    "phi3": (["<unk>", "<s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
             "<s>", "<|end|>", "<|endoftext|>", False),
}
FAMILY_SPECIALS["gemma2"] = (["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"],
                             "<bos>", "<end_of_turn>", "<pad>", True)
FAMILY_SPECIALS["gemma3"] = FAMILY_SPECIALS["gemma2"]
FAMILY_SPECIALS["llama3"] = FAMILY_SPECIALS["llama"]
FAMILY_SPECIALS["qwen3"] = FAMILY_SPECIALS["qwen2"]

# Llama-3-style header template (own simplified version: no date/tools handling).
LLAMA_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)

# ChatML (own simplified version; default system prompt like Qwen2 instruct models have).
CHATML_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

# Plain template for the GPT-2 family.
GPT2_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{- message['content'] + '\\n\\n' }}"
    "{%- elif message['role'] == 'user' %}{{- 'User: ' + message['content'] + '\\n' }}"
    "{%- else %}{{- 'Assistant: ' + message['content'] + eos_token + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- 'Assistant:' }}{%- endif %}"
)

# Mistral-style [INST] template (own simplified version: system prompt folded into the first user turn).
MISTRAL_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{- '[INST] ' + message['content'] + ' [/INST]' }}"
    "{%- elif message['role'] == 'assistant' %}{{- message['content'] + eos_token }}"
    "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}"
    "{%- endif %}"
    "{%- endfor %}"
)

# Phi-3-style template (own simplified version).
PHI3_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|assistant|>\n' }}{%- endif %}"
)

# Gemma-style turns (own simplified version).
GEMMA_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- set role = 'model' if message['role'] == 'assistant' else 'user' %}"
    "{{- '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<start_of_turn>model\n' }}{%- endif %}"
)

FAMILY_TEMPLATES = {"gemma2": GEMMA_TEMPLATE, "gemma3": GEMMA_TEMPLATE, "llama": LLAMA_TEMPLATE, "qwen2": CHATML_TEMPLATE, "gpt2": GPT2_TEMPLATE,
                    "llama3": LLAMA_TEMPLATE, "qwen3": CHATML_TEMPLATE, "mistral": MISTRAL_TEMPLATE,
                    "phi3": PHI3_TEMPLATE}


def stdlib_corpus(max_bytes=1_500_000):
    """A deterministic slice of the Python standard library sources (sorted file order)."""
    root = sysconfig.get_paths()["stdlib"]
    texts, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "test", "tests", "idlelib",
                                                              "__pycache__", "lib2to3", "turtledemo"))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue
            texts.append(text)
            total += len(text)
            if total >= max_bytes:
                return texts
    return texts


def train_tokenizer(family, vocab_size=512):
    """Train a byte-level BPE tokenizer; returns a transformers PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials, bos, eos, pad, add_bos = FAMILY_SPECIALS[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)
    tok.train_from_iterator(stdlib_corpus(), trainer=trainer)
    if add_bos:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    kwargs = dict(tokenizer_object=tok, eos_token=eos, pad_token=pad, clean_up_tokenization_spaces=False)
    if bos is not None:
        kwargs["bos_token"] = bos
    if family == "gpt2":
        kwargs["unk_token"] = "<|endoftext|>"
    return PreTrainedTokenizerFast(**kwargs)


def _window(sliding_window):
    """mistral, phi3: the default window when none is given, no window for 0 (Mistral 7B v0.2 and later)."""
    if sliding_window == 0:
        return None
    return sliding_window or DEFAULT_SLIDING_WINDOW


def build_config(family, vocab, layers, hidden, heads, kv_heads, intermediate, init_std, tokenizer,
                 max_positions=None, sliding_window=None):
    from transformers import (Gemma2Config, Gemma3TextConfig, GPT2Config, LlamaConfig, MistralConfig, Phi3Config,
                              Qwen2Config, Qwen3Config)

    def tid(t):
        return tokenizer.convert_tokens_to_ids(t) if t is not None else None

    specials, bos, eos, pad, _ = FAMILY_SPECIALS[family]
    bos_id = tid(bos) if bos else tid(eos)
    eos_id, pad_id = tid(eos), tid(pad)
    if family == "llama":
        return LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                           num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                           max_position_embeddings=max_positions or 2048, initializer_range=init_std,
                           rms_norm_eps=1e-5,
                           tie_word_embeddings=False, bos_token_id=bos_id, eos_token_id=eos_id,
                           pad_token_id=pad_id)
    if family == "qwen2":
        return Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                           num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                           max_position_embeddings=max_positions or 2048, initializer_range=init_std,
                           rms_norm_eps=1e-6,
                           tie_word_embeddings=True, bos_token_id=bos_id, eos_token_id=eos_id,
                           pad_token_id=pad_id, use_sliding_window=False)
    if family == "llama3":
        positions = max_positions or 2048
        rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": positions // 8}
        return LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                           num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                           max_position_embeddings=positions, initializer_range=init_std, rms_norm_eps=1e-5,
                           rope_parameters=rope, tie_word_embeddings=True, bos_token_id=bos_id,
                           eos_token_id=eos_id, pad_token_id=pad_id)
    if family == "qwen3":
        return Qwen3Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                           num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                           head_dim=hidden // heads, max_position_embeddings=max_positions or 2048,
                           initializer_range=init_std, rms_norm_eps=1e-6, tie_word_embeddings=True,
                           bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id, use_sliding_window=False)
    if family == "mistral":
        return MistralConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                             num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                             head_dim=hidden // heads, max_position_embeddings=max_positions or 2048,
                             initializer_range=init_std, rms_norm_eps=1e-5, tie_word_embeddings=False,
                             sliding_window=_window(sliding_window), bos_token_id=bos_id,
                             eos_token_id=eos_id, pad_token_id=pad_id)
    if family == "phi3":
        return Phi3Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                          num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                          max_position_embeddings=max_positions or 2048, original_max_position_embeddings=
                          max_positions or 2048, initializer_range=init_std, rms_norm_eps=1e-5,
                          tie_word_embeddings=False, sliding_window=_window(sliding_window),
                          bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    if family in ("gemma2", "gemma3"):
        # Sliding and full layers alternate (Gemma-2's pattern); Gemma-3 has 5 sliding per full one, which 2
        # layers cannot show, so it alternates below 6 layers; scaled embeddings and q/k norms (Gemma-3) are
        # inside transformers' model.
        period = 6 if family == "gemma3" and layers >= 6 else 2
        common = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                      head_dim=hidden // heads, max_position_embeddings=max_positions or 2048,
                      initializer_range=init_std, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      sliding_window=sliding_window or DEFAULT_SLIDING_WINDOW, query_pre_attn_scalar=hidden // heads,
                      layer_types=["full_attention" if (i + 1) % period == 0 else "sliding_attention"
                                   for i in range(layers)],
                      bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id)
        if family == "gemma2":
            # attention soft-capping 5 (released Gemma-2: 50) so that it changes random-init scores measurably
            return Gemma2Config(attn_logit_softcapping=5.0, final_logit_softcapping=30.0, **common)
        return Gemma3TextConfig(final_logit_softcapping=30.0, **common)
    if family == "gpt2":
        if kv_heads != heads:
            raise SystemExit("gpt2 has no GQA: --kv-heads must equal --heads")
        return GPT2Config(vocab_size=vocab, n_embd=hidden, n_layer=layers, n_head=heads, n_inner=intermediate,
                          # n_ctx: what released GPT-2 configs carry, and llama.cpp's converter reads
                          n_positions=max_positions or 1024, n_ctx=max_positions or 1024,
                          initializer_range=init_std, bos_token_id=bos_id,
                          eos_token_id=eos_id, pad_token_id=pad_id, tie_word_embeddings=True)
    raise SystemExit(f"unknown family {family}")


def make_random(family, out_dir, tokenizer_dir=None, layers=None, hidden=None, heads=None, kv_heads=None,
                intermediate=None, vocab=None, seed=0, init_std=0.2, max_positions=None, sliding_window=None,
                tie_embeddings=None, head_dim=None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    if head_dim is not None and family not in HEAD_DIM_FAMILIES:
        raise SystemExit(f"--head-dim: {family} derives head_dim from hidden / heads; --head-dim is for "
                         f"{', '.join(HEAD_DIM_FAMILIES)}")
    torch.set_num_threads(1)
    d = dict(FAMILY_DEFAULTS[family])
    for k, v in dict(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                     intermediate=intermediate).items():
        if v is not None:
            d[k] = v
    if heads is not None and kv_heads is None and d["kv_heads"] == FAMILY_DEFAULTS[family]["heads"]:
        d["kv_heads"] = d["heads"]
    if family == "gpt2":
        d["kv_heads"] = d["heads"]
    if tokenizer_dir:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    else:
        tokenizer = train_tokenizer(family)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = FAMILY_TEMPLATES[family]
    if vocab is None:
        vocab = len(tokenizer)
    if vocab < len(tokenizer):
        raise SystemExit(f"--vocab {vocab} is smaller than the tokenizer ({len(tokenizer)} tokens)")
    config = build_config(family, vocab, d["layers"], d["hidden"], d["heads"], d["kv_heads"],
                          d["intermediate"], init_std, tokenizer, max_positions, sliding_window)
    if head_dim is not None:
        # e.g. Qwen3-0.6B: 16 heads of 128 over a hidden size of 1024
        config.head_dim = head_dim
        if family in ("gemma2", "gemma3"):
            config.query_pre_attn_scalar = head_dim  # the released Gemmas scale scores by head_dim ** -0.5
    if tie_embeddings is not None:
        # e.g. SmolLM2 is a Llama with tied embeddings: one [vocab, hidden] matrix fewer in the files
        config.tie_word_embeddings = tie_embeddings
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                               pad_token_id=config.pad_token_id)
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    n = sum(p.numel() for p in model.parameters())
    print(f"make-random: {family} layers={d['layers']} hidden={d['hidden']} heads={d['heads']} "
          f"kv_heads={d['kv_heads']} vocab={vocab} params={n} init_std={init_std} seed={seed} -> {out_dir}")
    return out_dir


def main(argv):
    p = argparse.ArgumentParser(prog="specula_tools make-random", description=__doc__.split("\n")[0])
    p.add_argument("--family", required=True, choices=sorted(FAMILY_DEFAULTS))
    p.add_argument("out_dir")
    p.add_argument("--tokenizer", help="take the tokenizer from this HF directory instead of training one")
    p.add_argument("--layers", type=int)
    p.add_argument("--hidden", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--kv-heads", type=int)
    p.add_argument("--intermediate", type=int)
    p.add_argument("--vocab", type=int, help="model vocab size (default: the tokenizer's size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-std", type=float, default=0.2)
    p.add_argument("--max-positions", type=int,
                   help="max_position_embeddings / GPT-2 n_positions (default 2048; GPT-2 1024)")
    p.add_argument("--sliding-window", type=int,
                   help=f"mistral, phi3: sliding_window (default {DEFAULT_SLIDING_WINDOW}; 0: none, every layer full)")
    p.add_argument("--head-dim", type=int,
                   help=f"head_dim when it is not hidden / heads (Qwen3-0.6B: 128 with hidden 1024, 16 heads); "
                        f"{', '.join(HEAD_DIM_FAMILIES)}")
    p.add_argument("--tie-embeddings", choices=("true", "false"),
                   help="override the family's tie_word_embeddings (SmolLM2: a llama with tied embeddings)")
    a = p.parse_args(argv)
    tie = None if a.tie_embeddings is None else a.tie_embeddings == "true"
    make_random(a.family, a.out_dir, a.tokenizer, a.layers, a.hidden, a.heads, a.kv_heads, a.intermediate,
                a.vocab, a.seed, a.init_std, a.max_positions, a.sliding_window, tie, a.head_dim)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
