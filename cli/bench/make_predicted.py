"""Predicted Outputs benchmark prompts: each prompt of a category of cli/bench/prompts.jsonl with, as its
prediction, the embedded target's own greedy answer edited the way a caller's prediction is wrong (one line left
out, one word changed). The embedded model does not follow edit instructions (the "edit" category's answers are
not the code its prompts show), so this measures what a prediction the answer mostly repeats is worth.

    python3 cli/bench/make_predicted.py --jar cli/target/specula-cli.jar --category copy > /tmp/predicted.jsonl
    java -jar cli/target/specula-cli.jar bench --prompts /tmp/predicted.jsonl --max-new-tokens 128 --ignore-eos \
        --policies plain,fixed:8,fixed:16,goodput --proposers model,ngram,prediction
"""
import argparse
import json
import os
import subprocess
import sys


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jar", required=True)
    ap.add_argument("--prompts", default=os.path.join(os.path.dirname(__file__), "prompts.jsonl"))
    ap.add_argument("--category", default="copy")
    ap.add_argument("--new-tokens", type=int, default=128)
    a = ap.parse_args(argv)
    rows = [json.loads(line) for line in open(a.prompts) if line.strip()]
    for row in rows:
        if row.get("category") != a.category or "prompt" not in row:
            continue
        result = subprocess.run(["java", "-jar", a.jar, "generate", "--prompt", row["prompt"], "--max-new-tokens",
                                 str(a.new_tokens), "--ignore-eos", "--policy", "plain", "--json"],
                                capture_output=True, text=True, check=True)
        lines = json.loads(result.stdout)["text"].split("\n")
        if len(lines) > 6:
            del lines[2]
            lines[4] = lines[4].replace("self", "this", 1) if "self" in lines[4] else lines[4] + "  # changed"
        print(json.dumps({"id": row["id"] + "-predicted", "category": "predicted", "prompt": row["prompt"],
                          "prediction": "\n".join(lines)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
