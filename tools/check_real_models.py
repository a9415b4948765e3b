"""Checks the Java engine against transformers on real pretrained models (by hand, not in CI).

Exports each model with `specula_tools export`, computes transformers' tokenization and greedy ids
(explicit all-ones attention mask: these vocabularies use id 0 for <unk>, which generate() would otherwise
treat as padding), runs `specula-cli generate` on the same prompts (plain, and speculative with each draft),
and prints what matched.

    cd tools && ../.venv/bin/python check_real_models.py ../../shared/models /tmp/real-onnx \
        --jar ../cli/target/specula-cli.jar
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went to the park. They",
           "A big red ball\nwas on the", "Tim was sad. ïé 🙂"]
TARGETS = {"stories260K": ["stories260K-draft-2L-distilled", "stories260K-draft-trunc4"], "babyllama-tok105": []}
NEW_TOKENS = 60


def reference(model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    rows = []
    for prompt in PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS, do_sample=False,
                             eos_token_id=None, pad_token_id=-1)
        new = out[0, ids.shape[1]:].tolist()
        rows.append({"prompt": prompt, "prompt_ids": ids[0].tolist(), "greedy_ids": new,
                     "text": tokenizer.decode(new, skip_special_tokens=True)})
    return rows


def generate(jar, args):
    run = subprocess.run(["java", "-jar", jar, "generate", "--json", "--ignore-eos",
                          "--max-new-tokens", str(NEW_TOKENS)] + args, capture_output=True, text=True)
    if run.returncode:
        sys.exit(run.stderr)
    return json.loads(run.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--jar", default="../cli/target/specula-cli.jar")
    args = parser.parse_args()
    for name in set(TARGETS) | {d for drafts in TARGETS.values() for d in drafts}:
        if not (args.work / name / "model.onnx").exists():
            subprocess.run([sys.executable, "-m", "specula_tools", "export", str(args.models / name),
                            str(args.work / name)], check=True)
    summary = {}
    for name, drafts in TARGETS.items():
        counts = {"prompts": 0, "prompt_ids_match": 0, "greedy_ids_match": 0, "text_match": 0,
                  "speculative_match": 0, "speculative_runs": 0}
        accepted = {d: [] for d in drafts}
        for row in reference(args.models / name):
            counts["prompts"] += 1
            target = str(args.work / name)
            by_text = generate(args.jar, ["--target", target, "--prompt", row["prompt"], "--policy", "plain"])
            by_ids = generate(args.jar, ["--target", target, "--prompt-ids", ",".join(map(str, row["prompt_ids"])),
                                         "--policy", "plain"])
            counts["prompt_ids_match"] += by_text["token_ids"] == by_ids["token_ids"] and \
                by_text["prompt_tokens"] == len(row["prompt_ids"])
            counts["greedy_ids_match"] += by_text["token_ids"] == row["greedy_ids"]
            counts["text_match"] += by_text["text"] == row["text"]
            for draft in drafts:
                spec = generate(args.jar, ["--target", target, "--draft", str(args.work / draft), "--prompt",
                                           row["prompt"], "--policy", "fixed:4"])
                counts["speculative_runs"] += 1
                counts["speculative_match"] += spec["token_ids"] == row["greedy_ids"]
                accepted[draft].append(spec["stats"]["mean_accepted_length"])
        counts["mean_accepted_length_gamma4"] = {d: round(sum(v) / len(v), 2) for d, v in accepted.items()}
        summary[name] = counts
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
