"""Uniform step API over a HF checkpoint directory or an exported ONNX directory (used by eval-pair/bench).

    r = open_runner(path)            # HF dir (config.json + weights) or ONNX dir (model.onnx)
    logits, past = r.forward(ids, past)   # ids: 1-D int sequence; logits: float32 [len(ids), vocab]
    past = r.crop(past, n)           # keep the first n cached positions (a view / slice)
"""
import os

import numpy as np


def open_runner(path, threads=2):
    if os.path.exists(os.path.join(path, "model.onnx")):
        return OrtRunner(path, threads)
    return HFRunner(path, threads)


class HFRunner:
    kind = "hf"

    def __init__(self, path, threads=2):
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.config = self.model.config

    def forward(self, ids, past=None):
        torch = self.torch
        from transformers import DynamicCache

        x = torch.as_tensor(np.asarray(ids, dtype=np.int64))[None]
        n_past = 0 if past is None else past[0][0].shape[2]
        cache = DynamicCache(config=self.config) if past is None else DynamicCache(ddp_cache_data=past, config=self.config)
        pos = torch.arange(n_past, n_past + x.shape[1])[None]
        with torch.no_grad():
            out = self.model(input_ids=x, position_ids=pos, past_key_values=cache, use_cache=True)
        pk = out.past_key_values
        new_past = [(layer.keys, layer.values) for layer in pk.layers]
        return out.logits[0].float().numpy(), new_past

    @staticmethod
    def crop(past, n):
        return [(k[:, :, :n], v[:, :, :n]) for k, v in past]


class OrtRunner:
    kind = "onnx"

    def __init__(self, path, threads=2, file="model.onnx"):
        import json

        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sess = ort.InferenceSession(os.path.join(path, file), so, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.sess.get_inputs()}
        self.packed = "attention_bias" in self.inputs
        self.layers = sum(1 for n in self.inputs if n.startswith("past_key_values.") and n.endswith(".key"))
        k0 = self.inputs["past_key_values.0.key"]
        self.past_dtype = np.float16 if "float16" in k0.type else np.float32
        with open(os.path.join(path, "config.json")) as fh:
            cfg = json.load(fh)
        self.kv_heads = cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        self.out_names = ["logits"] + [f"present.{i}.{k}" for i in range(self.layers) for k in ("key", "value")]

    def empty_past(self):
        z = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=self.past_dtype)
        return [(z, z) for _ in range(self.layers)]

    def feeds(self, ids, past):
        if past is None:
            past = self.empty_past()
        s = len(ids)
        n_past = past[0][0].shape[2]
        f = {"input_ids": np.asarray(ids, dtype=np.int64)[None],
             "position_ids": np.arange(n_past, n_past + s, dtype=np.int64)[None]}
        if self.packed:
            bias = np.zeros((1, 1, s, n_past + s), dtype=np.float32)
            bias[0, 0, :, n_past:] = np.where(np.triu(np.ones((s, s), dtype=bool), 1), -1e9, 0.0)
            f["attention_bias"] = bias
        else:
            f["attention_mask"] = np.ones((1, n_past + s), dtype=np.int64)
        if "logits_to_keep" in self.inputs:
            f["logits_to_keep"] = np.array(0, dtype=np.int64)  # 0 = every row
        for i, (k, v) in enumerate(past):
            f[f"past_key_values.{i}.key"] = np.ascontiguousarray(k)
            f[f"past_key_values.{i}.value"] = np.ascontiguousarray(v)
        return f

    def forward(self, ids, past=None):
        outs = self.sess.run(self.out_names, self.feeds(ids, past))
        new_past = [(outs[1 + 2 * i], outs[2 + 2 * i]) for i in range(self.layers)]
        return outs[0][0].astype(np.float32), new_past

    @staticmethod
    def crop(past, n):
        return [(k[:, :, :n], v[:, :, :n]) for k, v in past]
