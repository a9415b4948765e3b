"""Run llama.cpp's convert_hf_to_gguf.py with the BPE pre-tokenizer named explicitly.

    python convert.py LLAMA_SRC --pre gpt-2|qwen2|... HF_DIR --outtype f32|f16|q8_0 --outfile OUT.gguf

The converter identifies a byte-level BPE pre-tokenizer by hashing how the tokenizer splits a fixed text and
refuses unknown hashes ("BPE pre-tokenizer was not recognized"). Our vocabularies are our own, so their hash is
unknown; this wrapper replaces TextModel.get_vocab_base_pre (conversion/base.py at llama.cpp 80fb11a) with one
that returns --pre, then runs the converter's own main() unchanged. The source tree is not modified.
"""
import os
import runpy
import sys


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--pre":
        print(__doc__, file=sys.stderr)
        return 2
    src, pre, rest = sys.argv[1], sys.argv[3], sys.argv[4:]
    sys.path.insert(0, src)
    sys.path.insert(1, os.path.join(src, "gguf-py"))
    import conversion.base as base

    def fixed_pre(self, tokenizer):
        print(f"convert.py: BPE pre-tokenizer forced to {pre!r}", file=sys.stderr)
        return pre

    base.TextModel.get_vocab_base_pre = fixed_pre
    sys.argv = [os.path.join(src, "convert_hf_to_gguf.py")] + rest
    runpy.run_path(sys.argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
