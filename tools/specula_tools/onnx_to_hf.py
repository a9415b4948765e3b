"""``onnx-to-hf``: rebuild a Hugging Face checkpoint from one of our Llama/Qwen2 ONNX exports (torch.onnx or fused).

    python -m specula_tools onnx-to-hf ONNX_DIR OUT_HF_DIR [--no-verify]

ONNX_DIR is an ``export`` output directory (``model.onnx`` + ``config.json`` + tokenizer files), e.g. the embedded
pair in models-tiny/src/main/resources/dev/specula/models/tiny/{target,draft}, whose Hugging Face checkpoints are
not kept. A fused graph (export_fused.py) names every weight after
transformers' parameters, so they are read by name. torch.onnx's exporter names only the norm weights and
``lm_head.weight``; the projection weights are anonymous
``MatMul`` initializers (``val_N``, stored transposed, optionally as float16 behind a ``Cast``). They are assigned
by graph order, 7 per layer in the order the modeling code calls them (q, k, v, o, gate, up, down), plus the q/k/v
biases for Qwen2 (the ``Add`` after the q/k/v ``MatMul``). Float16-stored weights are widened exactly, so the
rebuilt float32 model computes what the ONNX graph computes.

Verification (non-zero exit on failure): transformers' logits for a 24-token prompt vs ONNX Runtime's on the
source ``model.onnx`` (max abs diff <= 1e-4 x max(1, max|logit|/10)), and 32 greedy ids from both, compared exactly.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

COPY_FILES = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja",
              "special_tokens_map.json"]
LAYER_ORDER = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def _initializers(onnx_dir):
    import onnx
    from onnx import numpy_helper
    model = onnx.load(os.path.join(onnx_dir, "model.onnx"), load_external_data=True)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # fp16-stored weights: Cast(x__fp16) -> x; follow the Cast so graph inputs resolve to the widened array.
    for node in model.graph.node:
        if node.op_type == "Cast" and node.input[0] in inits:
            inits[node.output[0]] = inits[node.input[0]].astype(np.float32)
    return model.graph, inits


def _fused_state_dict(inits, config):
    """The weights of a fused graph (export_fused.py), which names them after transformers' parameters: the packed
    q/k/v weight (and bias) split back in three, the transposed projections transposed back."""
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    sizes = [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim]
    sd = {}
    for key, arr in inits.items():
        if key.endswith("__fp16") or key.startswith("rotary.") or not key.startswith(("model.", "lm_head.")):
            continue
        arr = arr.astype(np.float32)
        if ".qkv_proj." in key:
            prefix = key.split("qkv_proj.")[0]
            kind = "weight" if key.endswith(".weight_t") else "bias"
            parts = np.split(arr.T if kind == "weight" else arr, np.cumsum(sizes)[:-1], axis=0)
            for name, part in zip("qkv", parts):
                sd[f"{prefix}{name}_proj.{kind}"] = np.ascontiguousarray(part)
        elif key.endswith(".weight_t"):
            sd[key[:-len("_t")]] = np.ascontiguousarray(arr.T)
        elif key.endswith(".weight_plus_one"):  # Gemma's norms, stored as the 1 + w they scale by
            sd[key[:-len("_plus_one")]] = arr - np.float32(1.0)
        else:
            sd[key] = arr
    return sd


def extract_state_dict(onnx_dir, config):
    """Returns {hf_name: float32 array} for the model described by ``config`` (a transformers config)."""
    graph, inits = _initializers(onnx_dir)
    if "model.layers.0.self_attn.qkv_proj.weight_t" in inits:
        return _fused_state_dict(inits, config)
    layers = config.num_hidden_layers
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    matmuls = []
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and inits[node.input[1]].ndim == 2:
            matmuls.append(node)
    # lm_head: MatMul against a Transpose of lm_head.weight (tied) or a 2-D weight [hidden, vocab]; it is last.
    expected = 7 * layers
    if len(matmuls) not in (expected, expected + 1):
        raise SystemExit(f"onnx-to-hf: found {len(matmuls)} weight MatMuls, expected {expected} (7 per layer) "
                         f"for {layers} layers; is {onnx_dir}/model.onnx a Llama/Qwen2 export?")
    sd = {}
    for idx, node in enumerate(matmuls[:expected]):
        layer, slot = divmod(idx, 7)
        name = f"model.layers.{layer}.{LAYER_ORDER[slot]}"
        sd[name + ".weight"] = np.ascontiguousarray(inits[node.input[1]].T)
        if slot < 3:  # q/k/v bias (Qwen2): the Add consuming the MatMul output with a 1-D initializer
            for c in consumers.get(node.output[0], []):
                if c.op_type == "Add":
                    other = c.input[1] if c.input[0] == node.output[0] else c.input[0]
                    if other in inits and inits[other].ndim == 1:
                        sd[name + ".bias"] = inits[other].astype(np.float32)
    if len(matmuls) == expected + 1:
        sd["lm_head.weight"] = np.ascontiguousarray(inits[matmuls[-1].input[1]].T)
    for key, arr in inits.items():
        if key.endswith("__fp16"):
            continue
        if key.startswith("base."):
            sd["model." + key[len("base."):]] = arr.astype(np.float32)
        elif key.startswith("model.") or key == "lm_head.weight":
            sd[key] = arr.astype(np.float32)
    if "lm_head.weight" in sd and "model.embed_tokens.weight" not in sd:
        # the export gathers the embedding from lm_head.weight when the two are tied
        gather = [n for n in graph.node if n.op_type == "Gather" and n.input[1] == "input_ids"]
        if gather and gather[0].input[0] in ("lm_head.weight",):
            sd["model.embed_tokens.weight"] = sd["lm_head.weight"]
        elif gather and gather[0].input[0] in inits:
            sd["model.embed_tokens.weight"] = inits[gather[0].input[0]].astype(np.float32)
    return sd


def rebuild(onnx_dir, out_dir):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    config = AutoConfig.from_pretrained(onnx_dir)
    config.dtype = "float32"
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    sd = extract_state_dict(onnx_dir, config)
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not (k == "lm_head.weight" and config.tie_word_embeddings)]
    extra = [k for k in sd if k not in own]
    if missing or extra:
        raise SystemExit(f"onnx-to-hf: names do not match the model: missing {missing[:8]}, unexpected {extra[:8]}")
    for k, arr in sd.items():
        if tuple(own[k].shape) != arr.shape:
            raise SystemExit(f"onnx-to-hf: {k}: ONNX shape {arr.shape} != model shape {tuple(own[k].shape)}")
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in sd.items()}, strict=False)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.eval()
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    for f in COPY_FILES:
        src = os.path.join(onnx_dir, f)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(out_dir, f))
    return model


def verify(onnx_dir, model, new_tokens=32):
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(onnx_dir, "tokenizer.json"))
    ids = tok.encode("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:").ids[:24]
    info = json.load(open(os.path.join(onnx_dir, "export_info.json")))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(onnx_dir, "model.onnx"), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    out_names = ["logits"] + [f"present.{i}.{k}" for i in range(info["num_layers"]) for k in ("key", "value")]
    layers, kvh, hd = info["num_layers"], info["num_kv_heads"], info["head_dim"]
    kv_dtype = np.float16 if info.get("kv_dtype") == "float16" else np.float32

    def ort_run(tokens, past, past_len):
        n = len(tokens)
        feed = {"input_ids": np.array([tokens], dtype=np.int64),
                "position_ids": np.arange(past_len, past_len + n, dtype=np.int64)[None]}
        if "attention_mask" in names:
            feed["attention_mask"] = np.ones((1, past_len + n), dtype=np.int64)
        if "attention_bias" in names:  # a --packed export: additive causal bias [1,1,n,past+n]
            bias = np.zeros((1, 1, n, past_len + n), dtype=np.float32)
            bias[0, 0, :, past_len:] = np.where(np.triu(np.ones((n, n), dtype=bool), 1), -1e9, 0.0)
            feed["attention_bias"] = bias
        if "logits_to_keep" in names:
            feed["logits_to_keep"] = np.array(0, dtype=np.int64)  # every position
        for i in range(layers):
            feed[f"past_key_values.{i}.key"] = past[2 * i]
            feed[f"past_key_values.{i}.value"] = past[2 * i + 1]
        out = dict(zip(out_names, sess.run(out_names, feed)))
        return out["logits"], [out[f"present.{i}.{k}"] for i in range(layers) for k in ("key", "value")]

    empty = [np.zeros((1, kvh, 0, hd), dtype=kv_dtype)] * (2 * layers)
    ort_logits, past = ort_run(ids, empty, 0)
    with torch.no_grad():
        hf_logits = model(torch.tensor([ids])).logits.numpy()
    diff = float(np.abs(hf_logits - ort_logits).max())
    limit = 1e-4 * max(1.0, float(np.abs(hf_logits).max()) / 10)
    # greedy: ORT one token per step feeding present back, vs transformers generate (eos never stops it)
    ort_ids, cur, plen, logits = [], ids, 0, ort_logits
    past = past
    plen = len(ids)
    for _ in range(new_tokens):
        nxt = int(logits[0, -1].argmax())
        ort_ids.append(nxt)
        logits, past = ort_run([nxt], past, plen)
        plen += 1
    with torch.no_grad():
        gen = model.generate(torch.tensor([ids]), max_new_tokens=new_tokens, do_sample=False, eos_token_id=[],
                             pad_token_id=0)
    hf_ids = gen[0, len(ids):].tolist()
    print(f"onnx-to-hf verify: prompt {len(ids)} tokens, logits max|diff| {diff:.3g} (limit {limit:.3g}), "
          f"greedy {new_tokens} ids {'equal' if hf_ids == ort_ids else 'DIFFER'}")
    if diff > limit or hf_ids != ort_ids:
        print(f"  transformers {hf_ids}\n  onnxruntime  {ort_ids}", file=sys.stderr)
        return False
    return True


def main(argv):
    p = argparse.ArgumentParser(prog="specula_tools onnx-to-hf", description=__doc__.split("\n\n")[0])
    p.add_argument("onnx_dir")
    p.add_argument("out_dir")
    p.add_argument("--no-verify", action="store_true")
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    model = rebuild(a.onnx_dir, a.out_dir)
    print(f"onnx-to-hf: wrote {a.out_dir}")
    if not a.no_verify and not verify(a.onnx_dir, model):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
