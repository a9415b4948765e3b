"""``chat-ast``: how often the chat path turns a code prompt into code that Python parses.

Each prompt of a JSONL file (``{"id": ..., "chat": "def fibonacci(n):"}``) is sent as one user message through
the Java CLI (``specula-cli generate --chat ... --json``, greedy), so the model's own chat template renders it
exactly as a Spring AI ``ChatClient`` call would. The program a user would see is the prompt and the completion from the
next line on (a completion that starts with its own line break is not given a second one); unless generation ended at EOS it is cut after its last newline (whole lines only), then given to
``ast.parse``. Prints one line per prompt and the share that parsed; ``--json OUT`` keeps the completions.
"""
import argparse
import ast
import json
import subprocess
import sys


def program(prompt, completion, finish_reason):
    """The prompt and the completion on the next line, cut to whole lines unless the model stopped by itself."""
    text = prompt + (completion if completion.startswith("\n") else "\n" + completion)
    if finish_reason != "eos" and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    return text


def parses(text):
    try:
        ast.parse(text)
        return True
    except SyntaxError:
        return False


def generate(args, chat):
    command = ["java", "-jar", args.cli, "generate", "--chat", chat, "--json", "--max-new-tokens",
               str(args.max_new_tokens), "--policy", "plain"]
    if args.target:
        command += ["--target", args.target]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"specula-cli failed ({done.returncode}) on {chat!r}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m specula_tools chat-ast", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cli", required=True, help="cli/target/specula-cli.jar")
    parser.add_argument("--prompts", required=True, help="JSONL with a 'chat' field per line")
    parser.add_argument("--target", help="model directory (default: the embedded pair's target)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--json", help="write prompts, completions and verdicts here")
    args = parser.parse_args(argv)

    with open(args.prompts, encoding="utf-8") as fh:
        prompts = [json.loads(line) for line in fh if line.strip()]
    rows = []
    for entry in prompts:
        out = generate(args, entry["chat"])
        text = program(entry["chat"], out["text"], out["finish_reason"])
        ok = parses(text)
        rows.append(dict(id=entry["id"], chat=entry["chat"], completion=out["text"],
                         finish_reason=out["finish_reason"], program=text, parses=ok))
        first = out["text"].strip().splitlines()[0] if out["text"].strip() else ""
        print(f"{entry['id']}  {'parses' if ok else 'fails '}  {first[:70]!r}")
    share = sum(r["parses"] for r in rows) / len(rows)
    print(f"parsed: {sum(r['parses'] for r in rows)}/{len(rows)} = {share:.0%}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(dict(max_new_tokens=args.max_new_tokens, parsed=share, results=rows), fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
