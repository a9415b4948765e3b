"""Long-prompt benchmark prompts: the first CHARS characters of a few modules of the running Python's standard
library, one JSONL row each (category "long"). With the embedded tokenizer, CPython 3.11's textwrap, shlex,
fnmatch and bisect give prompts of 1,666, 1,557, 1,495 and 1,027 tokens, under the embedded pair's 2,048-token
context with 128 new tokens.

    python3 cli/bench/make_long_prompts.py > /tmp/long-prompts.jsonl
    java -jar cli/target/specula-cli.jar bench --prompts /tmp/long-prompts.jsonl --max-new-tokens 128 --ignore-eos \
        --policies plain,goodput --proposers model,ngram
"""
import argparse
import json
import os
import sys
import sysconfig

MODULES = ("textwrap.py", "shlex.py", "fnmatch.py", "bisect.py")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chars", type=int, default=5200)
    ap.add_argument("--modules", default=",".join(MODULES))
    a = ap.parse_args(argv)
    lib = sysconfig.get_paths()["stdlib"]
    for i, name in enumerate(a.modules.split(",")):
        with open(os.path.join(lib, name), encoding="utf-8") as source:
            text = source.read()[:a.chars]
        print(json.dumps({"id": f"long-{i + 1:02d}", "category": "long", "prompt": text}))


if __name__ == "__main__":
    main(sys.argv[1:])
