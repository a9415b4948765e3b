"""Test fixtures for the GRIFFIN feature head (``fixtures --only griffin``).

models/llama-hidden-packed   the llama fixture's weights (make-random --family llama with the fixture's seed, checked
                             against the fixture's model.onnx), exported
                             --packed --with-hidden: a target a feature head can read (last_hidden_state).
models/griffin-random        a randomly initialised GRIFFIN head for it (griffin_model, seeded): small enough
                             for the thousands of sampled runs of the engine's chi-square tests; it mostly
                             disagrees with the target, so rejections run in nearly every round.
"""
import json
import os
import shutil

HEAD_SEED = 7


def build(out_dir, tmp):
    import torch

    from . import export_core, griffin_model, onnx_verify
    from .fixtures import _check_same_model, _quiet
    from .make_random import make_random

    torch.set_num_threads(1)
    source = os.path.join(out_dir, "models", "llama")
    with open(os.path.join(source, "reference.json"), encoding="utf-8") as fh:
        seed = int(json.load(fh)["generator"].split("--seed ")[1].split(";")[0])
    hf_dir = os.path.join(tmp, "hf-llama-for-griffin")
    with _quiet():
        make_random("llama", hf_dir, seed=seed)
    model, tokenizer = export_core.load(hf_dir)
    _check_same_model(os.path.join(source, "model.onnx"), model)
    target = os.path.join(out_dir, "models", "llama-hidden-packed")
    if os.path.exists(target):
        shutil.rmtree(target)
    os.makedirs(target)
    onnx_path, graph = export_core.export_onnx(model, target, with_hidden=True, packed=True, graph="torch")
    export_core.write_side_files(hf_dir, target, model, tokenizer,
                                 dict(with_hidden=True, packed=True, fp16=False, opset=18, graph=graph))
    if not onnx_verify.verify(onnx_path, model, tokenizer, packed=True, with_hidden=True):
        raise SystemExit("fixtures: verification of llama-hidden-packed failed")

    with open(os.path.join(target, "config.json"), encoding="utf-8") as fh:
        target_cfg = json.load(fh)
    torch.manual_seed(HEAD_SEED)
    cfg = griffin_model.default_config(target_cfg, intermediate_size=96, emlp_size=64)
    # the llama fixture is untied: the head's logits go through the target's own lm_head
    head = griffin_model.build_head(cfg, model.get_input_embeddings().weight,
                                    lm_head_weight=model.get_output_embeddings().weight)
    head.eval()
    dest = os.path.join(out_dir, "models", "griffin-random")
    if os.path.exists(dest):
        shutil.rmtree(dest)
    griffin_model.write_dir(head, dest, target, fp16_weights=False, info={
        "generator": f"specula_tools fixtures --only griffin (fixture_griffin.py): random init, torch seed {HEAD_SEED}",
        "target": "models/llama-hidden-packed",
        "trainable_parameters": griffin_model.trainable_params(head),
    })
    check = griffin_model.verify_onnx(head, os.path.join(dest, "model.onnx"), fp16_weights=False)
    if not check["ok"]:
        raise SystemExit(f"fixtures: griffin-random ONNX differs from torch: {check}")
    return ["llama-hidden-packed", "griffin-random"]
