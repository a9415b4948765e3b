"""``large-vocab``: a byte-level BPE tokenizer of a real model's size, to measure what scales with the vocabulary
(grammar masks, logits processing) where no such tokenizer is reachable.

    python -m specula_tools large-vocab OUT_TOKENIZER_DIR [--size 151936] [--added 293]

Trained on the Python standard library's sources (the ones that are valid UTF-8) with Qwen2's pre-tokenizer split
and byte-level alphabet: ``size - added`` learned tokens, then ``added`` added tokens (``<|endoftext|>``,
``<|im_start|>``, ``<|im_end|>``, then ``<|extra_N|>``), as Qwen2.5's 151,643 + 293 = 151,936. Then, for a model:
``make-random --family qwen2 OUT_HF --tokenizer OUT_TOKENIZER_DIR`` and ``export``. Takes a few minutes.
"""
import argparse
import glob
import os
import sys
import sysconfig

QWEN2_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
               r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")


def _utf8(path):
    try:
        with open(path, encoding="utf-8") as fh:
            fh.read()
        return True
    except (UnicodeDecodeError, OSError):
        return False


def large_vocab(out_dir, size, added):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    files = [f for f in sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "**", "*.py"),
                                         recursive=True)) if _utf8(f)]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=size - added, min_frequency=1, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train(files, trainer)
    learned = tokenizer.get_vocab_size()
    if learned < size - added:
        raise SystemExit(f"large-vocab: the corpus gave only {learned} tokens, fewer than {size - added}")
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer.add_special_tokens(specials + [f"<|extra_{i}|>" for i in range(added - len(specials))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.save_pretrained(out_dir)
    print(f"large-vocab: {len(fast)} tokens ({learned} learned + {added} added) in {out_dir}")


def main(argv):
    p = argparse.ArgumentParser(prog="specula_tools large-vocab", description=__doc__.split("\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--size", type=int, default=151_936)
    p.add_argument("--added", type=int, default=293)
    args = p.parse_args(argv)
    large_vocab(args.out_dir, args.size, args.added)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
