"""``fixtures``: small test fixtures for the Java engine tests.

    python -m specula_tools fixtures OUT_DIR [--only models,families,fused,tokenizers,chat-templates,large-vocab,griffin]

Writes (see OUT_DIR/README.md, also written):
  models/{llama,qwen2,gpt2,llama-fp16}/  tiny random-init exports (2 layers, hidden 64, vocab 512; --fp16 for
                                         llama-fp16) + reference.json (transformers greedy ids, 20 new tokens)
  models/{qwen3,llama3,mistral,phi3,gemma2,gemma3}/  the same for more families (issue 11) with a long
                                         prompt; mistral, phi3, gemma have a 16-token sliding window;
  models/{mistral,phi3,gemma2,gemma3}-draft/  1-layer random drafts of those (same tokenizer, no reference)
  tokenizers/stories260K/                tokenizer.json + tokenizer_config.json of the real stories260K model (MIT)
  tokenizers.json                        transformers encode/decode results for every fixture tokenizer
  chat-templates.json                    real chat templates rendered by transformers' apply_chat_template
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile

STORIES_DIR = "/work/shared/models/stories260K"
MAX_NEW_TOKENS = 20
MAX_SEED_TRIES = 12
# Greedy paths must stay this far from ties (top1 - top2 logit) so other ONNX Runtime builds (Java 1.29, other
# CPUs) reproduce them: fp32 runtimes differ by ~1e-5, fp16 ones by up to ~1e-2 from torch.
MIN_MARGIN = {False: 1e-3, True: 5e-3}

MODEL_PROMPTS = [
    "Hello, world!",
    "def add(a, b):\n    return a + b\n",
    "   leading spaces and trailing   ",
    "Ünïcödé: naïve café — 你好 🙂",
    "\n\n\tTabs\tand\nnewlines\n",
]

TOKENIZER_TEXTS = [
    "",
    "Hello, world!",
    "a",
    " ",
    "   leading spaces",
    "trailing spaces   ",
    "\n\nnewlines\n\tand tabs\r\n",
    "def f(x):\n    return x * 2  # double\n",
    "    indented = {'a': [1, 2, 3], \"b\": None}",
    "Ünïcödé naïve café",
    "你好，世界",
    "emoji 🙂👍🏽 family 👨‍👩‍👧",
    "math: αβγ ≤ ∞ — “quotes” … ½",
    "<|im_start|>user\nhi<|im_end|>",
    "<|begin_of_text|>hi<|eot_id|> <s>hi</s> <|endoftext|>",
    "Once upon a time, there was a little girl named Lily.",
    "1234567890 3.14159 0x1F",
]

# Families added by issue 11 (the `families` part): (fixture name, make-random family). Their reference.json has
# one more case, a prompt of LONG_PROMPT_TOKENS tokens (longer than mistral's 16-token window, 3 windows).
FAMILY_FIXTURES = [("qwen3", "qwen3"), ("llama3", "llama3"), ("mistral", "mistral"), ("phi3", "phi3"),
                   ("gemma2", "gemma2"), ("gemma3", "gemma3")]
# Sliding-window fixtures that also get a draft, models/<name>-draft: the same family and tokenizer, 1 layer, hidden
# 32, 2 heads and this many KV heads (phi3's target has no GQA), seed 101. Random, so mostly rejected: rollback
# holes then occur inside the 16-token window (ReferenceDecodingTest).
WINDOW_DRAFTS = {"mistral": 1, "phi3": 2, "gemma2": 1, "gemma3": 1}
# families whose fixtures are made with untied embeddings although the released models tie them (see build_families)
UNTIED = ("gemma2", "gemma3")
LONG_PROMPT = ("import os\nimport sys\n\n\ndef main(argv):\n    for name in sorted(os.listdir(argv[1])):\n"
               "        path = os.path.join(argv[1], name)\n        if os.path.isfile(path):\n"
               "            print(name, os.path.getsize(path))\n    return 0\n")

# (name, family, fp16)
FIXTURE_MODELS = [("llama", "llama", False), ("qwen2", "qwen2", False), ("gpt2", "gpt2", False),
                  ("llama-fp16", "llama", True)]


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


# ---------------------------------------------------------------------------------------------- models

def _reference(model, tokenizer, dec, family, fp16, seed, prompts=None):
    """reference.json content, or None if ONNX Runtime greedy differs from transformers on a case."""
    import torch

    from .onnx_verify import _generate, _greedy_margins, ort_greedy

    cases = []
    for prompt in prompts or MODEL_PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        hf = _generate(model, ids, MAX_NEW_TOKENS)
        ort = ort_greedy(dec, ids, MAX_NEW_TOKENS)
        if hf != ort:
            print(f"fixtures: {family}{' fp16' if fp16 else ''} seed {seed}: ORT greedy differs from "
                  f"transformers on {prompt!r}; trying another seed", file=sys.stderr)
            return None
        margin = min(_greedy_margins(model, ids, MAX_NEW_TOKENS))
        if margin < MIN_MARGIN[fp16]:
            print(f"fixtures: {family}{' fp16' if fp16 else ''} seed {seed}: near-tie on {prompt!r} "
                  f"(top1-top2 {margin:.2e}); trying another seed", file=sys.stderr)
            return None
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].float()
        top = torch.topk(logits, 5)
        cases.append({
            "prompt": prompt,
            "prompt_ids": ids,
            "greedy_ids": hf,
            "text": tokenizer.decode(hf, skip_special_tokens=False),
            "min_margin": round(margin, 6),
            "prefill_top5": [[int(i), round(float(v), 5)] for v, i in zip(top.values, top.indices)],
        })
    return cases


def build_models(out_dir, tmp):
    import torch

    from . import export_core, onnx_verify
    from .make_random import make_random

    torch.set_num_threads(1)
    done = {}
    for family in ("llama", "qwen2", "gpt2"):
        variants = [(name, fp16) for name, fam, fp16 in FIXTURE_MODELS if fam == family]
        for attempt in range(MAX_SEED_TRIES):
            seed = attempt
            hf_dir = os.path.join(tmp, f"hf-{family}-{seed}")
            with _quiet():
                make_random(family, hf_dir, seed=seed, max_positions=512 if family == "gpt2" else None)
            results = {}
            for name, fp16 in variants:
                dest, onnx_path, model, tokenizer = _export_verified(hf_dir, out_dir, name, fp16=fp16)
                dec = onnx_verify.OrtDecoder(onnx_path, model, False, False, fp16)
                cases = _reference(model, tokenizer, dec, family, fp16, seed)
                if cases is None:
                    break
                results[name] = (dest, cases, fp16)
            if len(results) == len(variants):
                break
        else:
            raise SystemExit(f"fixtures: no seed in 0..{MAX_SEED_TRIES - 1} gave identical greedy ids for {family}")
        for name, (dest, cases, fp16) in results.items():
            _write_json(os.path.join(dest, "reference.json"), {
                "family": family,
                "kv_dtype": "float16" if fp16 else "float32",
                "generator": f"specula_tools make-random --family {family} --seed {seed}"
                             f"{' --max-positions 512' if family == 'gpt2' else ''}; export{' --fp16' if fp16 else ''}",
                "reference": "transformers generate(do_sample=False, max_new_tokens=20) with eos_token_id=[] "
                             "(never stops early); the model in the exported precision; ONNX Runtime 1.30 CPU "
                             "greedy verified identical",
                "max_new_tokens": MAX_NEW_TOKENS,
                "text_decoding": "tokenizer.decode(greedy_ids, skip_special_tokens=False)",
                "min_margin": "smallest top1-top2 logit gap along the greedy path (seeds are chosen so that it is "
                              f">= {MIN_MARGIN[fp16]:g})",
                "prefill_top5": "[id, logit] of the 5 largest logits after the prompt",
                "cases": cases,
            })
            done[name] = dest
        if family == "llama":
            done["llama-draft"] = _build_llama_draft(out_dir, tmp, hf_dir)
            done["llama-packed"] = _build_llama_packed(out_dir, hf_dir)
            done["llama-wide"] = _build_llama_wide(out_dir, tmp, hf_dir)
    return done


def build_families(out_dir, tmp, only=None):
    """models/{qwen3,llama3,mistral,phi3,gemma2,gemma3} (+ reference.json with a long-prompt case) and
    models/{mistral,phi3,gemma2,gemma3}-draft; ``only``: a subset of those fixture names (each draft comes with its
    target)."""
    import torch

    from . import onnx_verify
    from .make_random import make_random

    torch.set_num_threads(1)
    done = {}
    prompts = MODEL_PROMPTS + [LONG_PROMPT]
    for name, family in FAMILY_FIXTURES:
        if only and name not in only:
            continue
        for seed in range(MAX_SEED_TRIES):
            hf_dir = os.path.join(tmp, f"hf-{family}-{seed}")
            with _quiet():
                # Gemma untied: with random tied embeddings scaled by sqrt(hidden), every greedy path repeats one
                # token, and a window over copies of one token cannot tell logical from physical positions
                make_random(family, hf_dir, seed=seed, tie_embeddings=False if family in UNTIED else None)
            dest, onnx_path, model, tokenizer = _export_verified(hf_dir, out_dir, name)
            dec = onnx_verify.OrtDecoder(onnx_path, model, False, False, False)
            cases = _reference(model, tokenizer, dec, family, False, seed, prompts)
            if cases is not None:
                break
        else:
            raise SystemExit(f"fixtures: no seed in 0..{MAX_SEED_TRIES - 1} gave identical greedy ids for {family}")
        long_tokens = len(cases[-1]["prompt_ids"])
        _write_json(os.path.join(dest, "reference.json"), {
            "family": family,
            "model_type": model.config.model_type,
            "sliding_window": getattr(model.config, "sliding_window", None),
            "kv_dtype": "float32",
            "generator": f"specula_tools make-random --family {family} --seed {seed}"
                         + (" --tie-embeddings false" if family in UNTIED else "") + "; export",
            "reference": "transformers generate(do_sample=False, max_new_tokens=20) with eos_token_id=[] "
                         "(never stops early); ONNX Runtime 1.30 CPU greedy verified identical",
            "max_new_tokens": MAX_NEW_TOKENS,
            "text_decoding": "tokenizer.decode(greedy_ids, skip_special_tokens=False)",
            "min_margin": "smallest top1-top2 logit gap along the greedy path (seeds are chosen so that it is "
                          f">= {MIN_MARGIN[False]:g})",
            "prefill_top5": "[id, logit] of the 5 largest logits after the prompt",
            "long_prompt": f"the last case's prompt is {long_tokens} tokens",
            "cases": cases,
        })
        done[name] = dest
        if name in WINDOW_DRAFTS:
            draft_hf = os.path.join(tmp, f"hf-{name}-draft")
            with _quiet():
                make_random(family, draft_hf, tokenizer_dir=hf_dir, layers=1, hidden=32, heads=2,
                            kv_heads=WINDOW_DRAFTS[name], intermediate=64, seed=101)
            done[f"{name}-draft"] = _export_verified(draft_hf, out_dir, f"{name}-draft")[0]
    return done


# Fused-graph twins (export_fused.py) of torch.onnx fixtures: (fixture, source fixture, --packed).
FUSED_FIXTURES = [("llama-fused", "llama", False), ("llama-fused-packed", "llama", True),
                  ("qwen2-fused", "qwen2", False), ("qwen3-fused", "qwen3", False),
                  ("mistral-fused", "mistral", False), ("gemma2-fused", "gemma2", False),
                  ("gemma3-fused", "gemma3", False), ("gpt2-fused", "gpt2", False)]


def build_fused(out_dir, tmp):
    """models/<name>-fused for each of FUSED_FIXTURES: the source fixture's model (make-random again with the seed,
    --max-positions and --tie-embeddings its reference.json names, checked to compute the fixture's logits) exported
    with --graph fused, and its reference.json (the same weights: the same reference)."""
    import re

    from . import export_core
    from .make_random import make_random

    done = {}
    for name, source, packed in FUSED_FIXTURES:
        source_dir = os.path.join(out_dir, "models", source)
        with open(os.path.join(source_dir, "reference.json"), encoding="utf-8") as f:
            reference = json.load(f)
        seed = int(re.search(r"--seed (\d+)", reference["generator"]).group(1))
        hf_dir = os.path.join(tmp, f"hf-{source}-{seed}")
        if not os.path.exists(hf_dir):
            with _quiet():
                positions = re.search(r"--max-positions (\d+)", reference["generator"])
                make_random(reference["family"], hf_dir, seed=seed,
                            max_positions=int(positions.group(1)) if positions else None,
                            tie_embeddings=False if "--tie-embeddings false" in reference["generator"] else None)
        _check_same_model(os.path.join(source_dir, "model.onnx"), export_core.load(hf_dir)[0])
        dest = _export_verified(hf_dir, out_dir, name, packed=packed, graph="fused")[0]
        shutil.copyfile(os.path.join(source_dir, "reference.json"), os.path.join(dest, "reference.json"))
        done[name] = dest
    return done


def _check_same_model(onnx_path, model, limit=1e-4):
    """Fails unless the ONNX graph's logits for a prompt are transformers' for ``model`` (the same weights)."""
    import numpy as np
    import torch

    from . import onnx_verify

    dec = onnx_verify.OrtDecoder(onnx_path, model, False, False, False)
    ids = list(range(1, 17))
    logits = dec.step(ids, list(range(len(ids))), dec.empty_past())["logits"]
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0].numpy()
    diff = float(np.abs(np.asarray(logits)[0] - expected).max())
    if diff > limit:
        raise SystemExit(f"fixtures: {onnx_path} is not the model make-random rebuilt (logits differ by {diff:.3g})")


def _export_verified(hf_dir, out_dir, name, fp16=False, packed=False, graph="torch"):
    """Exports an HF directory into models/<name> and runs export's own verification; returns (dest, onnx, model,
    tokenizer)."""
    from . import export_core, onnx_verify

    model, tokenizer = export_core.load(hf_dir, fp16=fp16)
    dest = os.path.join(out_dir, "models", name)
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    onnx_path, graph = export_core.export_onnx(model, dest, fp16=fp16, packed=packed, graph=graph)
    export_core.write_side_files(hf_dir, dest, model, tokenizer,
                                 dict(with_hidden=False, packed=packed, fp16=fp16, opset=18, graph=graph))
    if not onnx_verify.verify(onnx_path, model, tokenizer, fp16=fp16, packed=packed):
        raise SystemExit(f"fixtures: verification of {name} failed")
    return dest, onnx_path, model, tokenizer


def _build_llama_packed(out_dir, hf_dir):
    """The llama fixture exported --packed (attention_bias input instead of attention_mask)."""
    return _export_verified(hf_dir, out_dir, "llama-packed", packed=True)[0]


def _build_llama_wide(out_dir, tmp, target_hf_dir):
    """A random-init Llama with the llama fixture's 512-id tokenizer but 600 logit rows: a target wider than its draft."""
    from .make_random import make_random

    hf_dir = os.path.join(tmp, "hf-llama-wide")
    with _quiet():
        make_random("llama", hf_dir, tokenizer_dir=target_hf_dir, vocab=600, seed=11)
    return _export_verified(hf_dir, out_dir, "llama-wide")[0]


def _build_llama_draft(out_dir, tmp, target_hf_dir):
    """A second random-init Llama with the llama fixture's tokenizer (1 layer, hidden 32, another seed): a draft
    that shares the target's vocabulary but not its weights, for the sampling and rollback tests."""
    from .make_random import make_random

    hf_dir = os.path.join(tmp, "hf-llama-draft")
    with _quiet():
        make_random("llama", hf_dir, tokenizer_dir=target_hf_dir, layers=1, hidden=32, heads=2, intermediate=64,
                    seed=101)
    return _export_verified(hf_dir, out_dir, "llama-draft")[0]


# ---------------------------------------------------------------------------------------------- tokenizers

def build_tokenizers(out_dir):
    from transformers import AutoTokenizer

    stories = os.path.join(out_dir, "tokenizers", "stories260K")
    os.makedirs(stories, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(STORIES_DIR, name), os.path.join(stories, name))
    rels = [f"models/{name}" for name, _, fp16 in FIXTURE_MODELS if not fp16] + ["tokenizers/stories260K"]
    entries = []
    for rel in rels:
        path = os.path.join(out_dir, rel)
        if not os.path.exists(os.path.join(path, "tokenizer.json")):
            print(f"fixtures: skipping tokenizer {rel} (not built)", file=sys.stderr)
            continue
        tok = AutoTokenizer.from_pretrained(path)
        for text in TOKENIZER_TEXTS:
            ids = tok(text)["input_ids"]
            entries.append({"tokenizer": rel, "text": text, "ids": ids,
                            "decoded": tok.decode(ids, skip_special_tokens=False)})
    _write_json(os.path.join(out_dir, "tokenizers.json"), entries)
    return len(entries)


# ---------------------------------------------------------------------------------------------- chat templates

SYSTEM = {"role": "system", "content": "You are a concise assistant."}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {"type": "object",
                       "properties": {"city": {"type": "string", "description": "City name"},
                                      "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                       "required": ["city"]},
    },
}

# (case name, messages, add_generation_prompt)
MESSAGE_CASES = [
    ("system-user", [SYSTEM, {"role": "user", "content": "What is 2+2?"}], True),
    ("user-only", [{"role": "user", "content": "Hello"}], True),
    ("multi-turn", [SYSTEM, {"role": "user", "content": "Hi!"},
                    {"role": "assistant", "content": "Hello! How can I help?"},
                    {"role": "user", "content": "Tell me a joke."}], False),
    ("multi-turn-generation", [{"role": "user", "content": "Hi!"},
                               {"role": "assistant", "content": "Hello! How can I help?"},
                               {"role": "user", "content": "Tell me a joke."}], True),
    ("whitespace-unicode", [{"role": "user", "content": "  leading and trailing spaces  \n\nand blank lines\n"},
                            {"role": "assistant", "content": "\n Sure:\n\tindented line \n"},
                            {"role": "user", "content": "Ünïcödé ✓ 你好 🙂 — “quotes” & <tags> {braces} "
                                                        "{{ not jinja }} {% raw %}"}], True),
]

TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the local time in a city, as \"HH:MM\".",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_QUESTION = {"role": "user", "content": "What's the weather in Paris?"}
# OpenAI-style calls as transformers takes them: arguments as a dict (templates apply `| tojson`); ids of 9
# alphanumeric characters, which Mistral's templates require
PARIS_CALL = {"id": "call0a1b2", "type": "function",
              "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
TOKYO_CALL = {"id": "call3c4d5", "type": "function", "function": {"name": "get_time", "arguments": {"city": "Tokyo"}}}
PARIS_RESULT = {"role": "tool", "tool_call_id": "call0a1b2", "name": "get_weather",
                "content": "{\"temperature\": 22, \"unit\": \"celsius\"}"}
TOKYO_RESULT = {"role": "tool", "tool_call_id": "call3c4d5", "name": "get_time", "content": "18:05"}
# arguments of every JSON type, non-ASCII text and floats Python writes in exponent form
TYPED_CALL = {"id": "call6e7f8", "type": "function",
              "function": {"name": "get_weather", "arguments": {
                  "city": "Zürich \"Altstadt\"", "days": 3, "threshold": 1e-05, "scale": 2.5, "big": 1e16,
                  "tags": ["a", "b"], "options": {"metric": True, "station": None}}}}
# tools + user; a call, its result and the generation prompt; two parallel calls and their results
TOOLS_USER = ("tools-user", [WEATHER_QUESTION], True, [WEATHER_TOOL, TIME_TOOL])
CALL_ROUNDTRIP = ("tool-call-with-ids", [WEATHER_QUESTION,
                                         {"role": "assistant", "content": None, "tool_calls": [PARIS_CALL]},
                                         PARIS_RESULT], True, [WEATHER_TOOL, TIME_TOOL])
PARALLEL_CALLS = ("parallel-calls", [{"role": "user", "content": "Weather in Paris and time in Tokyo?"},
                                     {"role": "assistant", "content": "", "tool_calls": [PARIS_CALL, TOKYO_CALL]},
                                     PARIS_RESULT, TOKYO_RESULT], True, [WEATHER_TOOL, TIME_TOOL])
TYPED_ARGUMENTS = ("typed-arguments", [WEATHER_QUESTION,
                                     {"role": "assistant", "content": None, "tool_calls": [TYPED_CALL]},
                                     {"role": "tool", "tool_call_id": "call6e7f8", "name": "get_weather",
                                      "content": "sunny"}], True, [WEATHER_TOOL])

TOOL_CASES = {
    "qwen2.5-instruct": [
        ("tools", [{"role": "user", "content": "What's the weather in Paris?"}], True, [WEATHER_TOOL]),
        ("tool-call-roundtrip", [
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": "",
             "tool_calls": [{"type": "function",
                             "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "content": "{\"temperature\": 22, \"unit\": \"celsius\"}"}], True, [WEATHER_TOOL]),
        TOOLS_USER, CALL_ROUNDTRIP, PARALLEL_CALLS, TYPED_ARGUMENTS,
    ],
    "llama-3.3-instruct": [
        ("tools", [SYSTEM, {"role": "user", "content": "What's the weather in Paris?"}], True, [WEATHER_TOOL]),
        TOOLS_USER, CALL_ROUNDTRIP, TYPED_ARGUMENTS,
    ],
    "llama-3.2-instruct": [TOOLS_USER, CALL_ROUNDTRIP],
    "mistral-nemo-instruct-2407": [TOOLS_USER, CALL_ROUNDTRIP, PARALLEL_CALLS, TYPED_ARGUMENTS],
    "qwen3": [TOOLS_USER, CALL_ROUNDTRIP, PARALLEL_CALLS, TYPED_ARGUMENTS,
              ("thinking-history", [{"role": "user", "content": "What's 2+2?"},
                                    {"role": "assistant", "content": "<think>\nEasy.\n</think>\n\n4"},
                                    {"role": "user", "content": "And 3+3?"}], True, None)],
}

ERROR_CASES = {
    # Llama 3.1+ templates refuse more than one call in a message
    "llama-3.3-instruct": [PARALLEL_CALLS[:3]],
    "llama-3.2-instruct": [PARALLEL_CALLS[:3]],
    "llama-2-chat": [("roles-must-alternate", [{"role": "user", "content": "Hi"},
                                               {"role": "user", "content": "Hi again"}], True)],
    "gemma-7b-it": [("system-role-not-supported", [SYSTEM, {"role": "user", "content": "Hi"}], True)],
}


def _render_tokenizer(bos, eos):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0}
    for t in (bos, eos):
        if t is not None and t not in vocab:
            vocab[t] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    kwargs = {"tokenizer_object": tok, "unk_token": "<unk>"}
    if bos is not None:
        kwargs["bos_token"] = bos
    if eos is not None:
        kwargs["eos_token"] = eos
    return PreTrainedTokenizerFast(**kwargs)


def _template_entries(out_dir):
    from .export_chat_templates import TEMPLATES, template

    entries = []
    for e in TEMPLATES:
        entries.append(dict(name=e["name"], model=e["model"], source=e["source"], template=template(e),
                            bos_token=e["bos_token"], eos_token=e["eos_token"],
                            extra_context=e.get("extra_context")))
    for name, _, fp16 in FIXTURE_MODELS:
        cfg = os.path.join(out_dir, "models", name, "tokenizer_config.json")
        if fp16 or not os.path.exists(cfg):
            continue
        with open(cfg, encoding="utf-8") as f:
            tc = json.load(f)
        if "chat_template" in tc:
            entries.append(dict(name=f"fixture-{name}", model=f"models/{name} (this fixture set)",
                                source="specula_tools make-random (own simple template in the family's style, "
                                       "not a released model's template)",
                                template=tc["chat_template"], bos_token=tc.get("bos_token"),
                                eos_token=tc.get("eos_token"), extra_context=None))
    return entries


def build_chat_templates(out_dir):
    cases = []
    skipped = []
    for e in _template_entries(out_dir):
        tok = _render_tokenizer(e["bos_token"], e["eos_token"])
        extra = e["extra_context"] or {}
        plan = [(n, m, g, None, False) for n, m, g in MESSAGE_CASES]
        plan += [(n, m, g, t, False) for n, m, g, t in TOOL_CASES.get(e["name"], [])]
        plan += [(n, m, g, None, True) for n, m, g in ERROR_CASES.get(e["name"], [])]
        for case_name, messages, gen, tools, want_error in plan:
            case = {"name": f"{e['name']}/{case_name}", "model": e["model"], "source": e["source"],
                    "template": e["template"], "bos_token": e["bos_token"], "eos_token": e["eos_token"],
                    "messages": messages, "add_generation_prompt": gen}
            if tools is not None:
                case["tools"] = tools
            if extra:
                case["extra_context"] = extra
            try:
                out = tok.apply_chat_template(messages, chat_template=e["template"], tools=tools, tokenize=False,
                                              add_generation_prompt=gen, **extra)
            except Exception as ex:  # jinja2 TemplateError from raise_exception, or a genuine failure
                if want_error:
                    case["expected_error"] = str(ex)
                    cases.append(case)
                else:
                    skipped.append(f"{case['name']}: {type(ex).__name__}: {ex}")
                continue
            if want_error:
                raise SystemExit(f"fixtures: {case['name']} was expected to raise but rendered {out!r}")
            case["expected"] = out
            cases.append(case)
    _write_json(os.path.join(out_dir, "chat-templates.json"), cases)
    return cases, skipped


# ---------------------------------------------------------------------------------------------- README

README = """# Test fixtures (generated)

Regenerate with `cd tools && ../.venv/bin/python -m specula_tools fixtures <this dir>`; do not edit by hand.

- `models/random-draft/`: not made here: a random-init draft with the embedded pair's tokenizer, made by
  `python -m specula_tools.pair_random` (see docs/models.md); `fixtures` leaves it in place.
- `models/llama-int4/`, `models/llama-dynamic-int8/`: not made here: the llama fixture (`model.onnx`) and
  llama-packed (as `model_packed.onnx`, one shared `model.onnx_data`) quantized by `specula_tools quantize
  --scheme int4-b32` (weight-only MatMulNBits, float activations) and `--scheme dynamic-int8` (quantize_dynamic,
  row-dependent: NOT lossless); commands in tools/README.md ("quantize"); rerun them after regenerating llama.
- `models/llama-int4-a8/`: not made here: the same two graphs quantized by `specula_tools quantize --scheme
  int4-b32-a8` (MatMulNBits accuracy_level 4: int8 activations; graph metadata `specula.min_call_tokens = 2`;
  since 2026-12-02 its token table 8-bit, GatherBlockQuantized).
- `models/llama-int4-b128-a8/`: not made here: the same two graphs quantized by `specula_tools quantize --scheme
  int4-b128-a8` (blocks of 128: ONNX Runtime computes the rows two at a time; graph metadata also
  `specula.call_tokens_multiple = 2`).
- `models/llama-fused-packed-int4-b128-a8/`: not made here: llama-fused-packed quantized by `specula_tools quantize
  --scheme int4-b128-a8` (one graph, `model.onnx`): a 4-bit graph whose every MatMulNBits and attention Specula's
  kernels take.
- `models/llama-int8-b128-a8/`: not made here: the same two graphs quantized by `specula_tools quantize --scheme
  int8-b128-a8` (8-bit weights in blocks of 128, under the same two rules).
- `models/llama-int8-sym-a8/`: not made here: the same two graphs quantized by `specula_tools quantize --scheme
  int8-b32-sym-a8` (8-bit symmetric blocks of 32, no zero points: llama.cpp's Q8_0 layout).
- `models/qwen-vocab/`: a random-init Qwen2 with Qwen2.5's 151,936 logits (1 layer, hidden 8) in two graphs
  over one float16-stored weights file, with and without the `logits_to_keep` input, and transformers' greedy
  continuation of a 2,000-token prompt (fixture_large_vocab.py; `--only large-vocab` rebuilds it alone).
- `models/llama-hidden-packed/` and `models/griffin-random/` (`--only griffin`, fixture_griffin.py; needs the llama
  fixture): the llama fixture exported `--packed --with-hidden`, and a random-init GRIFFIN feature head for it.
- `models/llama-wide/`: a random-init Llama (seed 11) with the llama fixture's 512-id tokenizer but 600 logit
  rows (`make-random --tokenizer <llama hf dir> --vocab 600`), for a target wider than its draft.
- `models/llama-packed/`: the llama fixture exported `--packed` (float32 `attention_bias` input instead of
  `attention_mask`).
- `models/{llama-fused,llama-fused-packed,qwen2-fused,qwen3-fused,mistral-fused,gemma2-fused,gemma3-fused,gpt2-fused}/`
  (`--only fused`): those fixtures' models, made again by `make-random` with their seed, exported with `--graph
  fused` (ONNX Runtime's fused operators: GroupQueryAttention, SkipSimplifiedLayerNormalization or
  SkipLayerNormalization, RotaryEmbedding, FastGelu; the sliding window as an attention bias; `export_fused.py`),
  llama-fused-packed with `--packed`; their reference.json is the source fixture's (the same weights).
- `models/llama-draft/`: a second random-init Llama (1 layer, hidden 32, seed 101) with the llama fixture's
  tokenizer: a draft that shares the vocabulary but not the weights (no reference.json).
- `models/{llama,qwen2,gpt2,llama-fp16}/`: tiny random-init models (2 layers, hidden 64, vocab 512, init std
  0.2) made by `specula_tools make-random` and exported by `specula_tools export` (llama-fp16: `--fp16`,
  float16 KV cache and compute, float32 logits). Inputs `input_ids`, `attention_mask`, `position_ids`,
  `past_key_values.{i}.key/value`; outputs `logits`, `present.{i}.key/value`. The causal mask uses physical
  cache slots, so masked holes in the cache are allowed. `reference.json`: transformers greedy ids
  (20 new tokens, no early stop) for 5 prompts, checked identical with ONNX Runtime 1.30 CPU greedy;
  `min_margin` is the smallest top-1/top-2 logit gap on the path, `prefill_top5` the top logits after the prompt.
  The tokenizers are byte-level BPEs trained on Python standard library sources (PSF licence).
- `models/{qwen3,llama3,mistral,phi3,gemma2,gemma3}/` (`--only families`): random-init exports of more families, same recipe
  and reference.json as above plus a 6th case with a long prompt (3 windows of mistral): Qwen3 (q/k RMSNorm,
  GQA, tied), `llama3` (model_type llama with `rope_type: llama3` scaling, GQA, tied) and Mistral (GQA, a
  **16-token sliding window** on every layer, untied) and `phi3` (Phi-3: fused qkv and gate_up projections,
  16-token sliding window, untied, own Phi-3-style template), `gemma2` and `gemma3` (model_type gemma3_text):
  layers alternating 16-token sliding window / full attention, untied (released Gemmas tie; random tied
  embeddings made every greedy path repeat one token), final logits soft-capped at 30, Gemma-2's
  attention scores soft-capped at 5. `models/{mistral,phi3,gemma2,gemma3}-draft/`: a 1-layer, hidden-32,
  2-head model of the same family (seed 101, window 16; 1 KV head, phi3-draft 2) with its target's tokenizer,
  a draft that gets rejected, so rollback holes occur inside the window (no reference.json; the gemma drafts'
  only layer is a sliding one).
- `tokenizers/stories260K/`: tokenizer of Andrej Karpathy's stories260K (tinyllamas, llama2.c; MIT licence,
  Copyright (c) 2023 Andrej Karpathy), a SentencePiece-style BPE with byte fallback, 512 pieces.
- `tokenizers.json`: `[{tokenizer, text, ids, decoded}]` = transformers `tokenizer(text)["input_ids"]` and
  `decode(ids, skip_special_tokens=False)`; `tokenizer` is a directory relative to this one.
- `chat-templates.json`: `[{name, model, source, template, bos_token, eos_token, messages,
  add_generation_prompt, tools?, extra_context?, expected | expected_error}]`; `expected` is transformers'
  `apply_chat_template(messages, tools=tools, add_generation_prompt=..., tokenize=False, **extra_context)`
  (Jinja2 with trim_blocks, lstrip_blocks, no trailing newline kept); `expected_error` is the message of the
  template's deliberate `raise_exception`. Templates are verbatim copies of released models' templates from the
  cited public sources, plus the fixture models' own (`fixture-*`, not from any released model).
"""


def _dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def main(argv):
    p = argparse.ArgumentParser(prog="specula_tools fixtures", description=__doc__.split("\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--only", default="models,families,fused,tokenizers,chat-templates,large-vocab,griffin",
                   help="comma-separated subset of: models,families,fused,tokenizers,chat-templates,large-vocab,"
                        "griffin")
    p.add_argument("--family", help="with families: only these fixtures (comma-separated, e.g. phi3)")
    a = p.parse_args(argv)
    parts = set(a.only.split(","))
    os.makedirs(a.out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="specula-fixtures-")
    try:
        if "models" in parts:
            built = build_models(a.out_dir, tmp)
            print(f"fixtures: models {', '.join(sorted(built))}")
        if "families" in parts:
            built = build_families(a.out_dir, tmp, a.family.split(",") if a.family else None)
            print(f"fixtures: models {', '.join(sorted(built))}")
        if "fused" in parts:
            built = build_fused(a.out_dir, tmp)
            print(f"fixtures: models {', '.join(sorted(built))}")
        if "large-vocab" in parts:
            from .fixture_large_vocab import build as build_large_vocab
            built = build_large_vocab(a.out_dir, tmp, os.path.join(a.out_dir, "models", "qwen2"))
            print(f"fixtures: {built} (fixture_large_vocab.py)")
        if "griffin" in parts:
            from .fixture_griffin import build as build_griffin
            built = build_griffin(a.out_dir, tmp)
            print(f"fixtures: models {', '.join(built)} (fixture_griffin.py)")
        if "tokenizers" in parts:
            n = build_tokenizers(a.out_dir)
            print(f"fixtures: tokenizers.json with {n} entries")
        if "chat-templates" in parts:
            cases, skipped = build_chat_templates(a.out_dir)
            n_err = sum(1 for c in cases if "expected_error" in c)
            print(f"fixtures: chat-templates.json with {len(cases)} cases ({n_err} expected errors); "
                  f"{len(skipped)} combinations skipped because the template raised")
            for s in skipped:
                print(f"  skipped {s}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(a.out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(README)
    size = _dir_size(a.out_dir)
    print(f"fixtures: {a.out_dir} is {size / 1e6:.2f} MB")
    if size > 10_000_000:  # ~8.3 MB with the issue-11 families (each model ~0.5 MB)
        print("fixtures: warning: larger than 10 MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
