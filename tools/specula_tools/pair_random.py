"""Random-init "mostly disagreeing" Llama draft sharing the embedded pair's tokenizer (Java test fixture).

    python -m specula_tools.pair_random --tokenizer TARGET_HF_DIR OUT_HF_DIR [--seed 7 --init-std 0.2]

hidden 32, 1 layer, 2 heads, 1 kv head, intermediate 64, vocab of the tokenizer, TIED embeddings (make-random's
llama is untied, which puts a 4096-token vocabulary over 1 MB). Large init std -> peaked, arbitrary logits, so it
rarely agrees with the trained target. Then export it with `python -m specula_tools export OUT_HF_DIR ONNX_DIR`.
"""
import argparse
import sys


def main(argv):
    p = argparse.ArgumentParser(prog="pair_random")
    p.add_argument("out_dir")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--init-std", type=float, default=0.2)
    a = p.parse_args(argv)
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from . import pair_models

    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    cfg = pair_models.llama_config(pair_models.RANDOM_DRAFT_SHAPE, len(tok), eot)
    cfg.initializer_range = a.init_std
    torch.manual_seed(a.seed)
    model = LlamaForCausalLM(cfg).eval()
    pair_models.save_hf(model, tok, a.out_dir)
    print(f"pair_random: {pair_models.param_count(model)} parameters, seed {a.seed}, init std {a.init_std} -> {a.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
