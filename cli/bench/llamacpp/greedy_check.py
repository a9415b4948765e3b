"""llama.cpp's greedy ids vs transformers' on the same prompts.

    python greedy_check.py --hf HF_DIR --gguf A.gguf [--gguf B.gguf ...] --greedy-bin specula-llama-greedy
        --prompts prompts.jsonl [--limit 8 (spread over the file)] [--new-tokens 32] [--json OUT.json]

transformers (float32, eager CPU) tokenizes each prompt and generates --new-tokens greedy ids (eos never stops
it). For each GGUF, specula-llama-greedy (greedy_ids.cpp) decodes from the same prompt ids and also tokenizes the
prompt text with llama.cpp's tokenizer. Prints one line per prompt and GGUF; where the greedy ids differ, also
transformers' margin at the first difference: its logit for its own token minus its logit for llama.cpp's, after
the prefix both generated, next to the median gap between transformers' top two logits over the prompt's generated
positions (a margin far below that gap is a near tie; one of the gap's size, a different computation). Exit status
1 if any f32 GGUF's greedy ids or any tokenization differ (f16/q8_0/q4_0 results are reported, not required to
match).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def load_transformers(hf_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.eval()
    return tok, model


def margin(model, ids, own, other):
    """transformers' logit for token own minus its logit for token other, after ids."""
    import torch
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1].float()
    return float(logits[own] - logits[other])


def transformers_reference(tok, model, prompts, new_tokens):
    import torch
    out = []
    for p in prompts:
        ids = tok(p["prompt"])["input_ids"]
        with torch.no_grad():
            gen = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=new_tokens, do_sample=False, eos_token_id=[],
                                 pad_token_id=model.config.pad_token_id or 0, output_scores=True,
                                 return_dict_in_generate=True)
        # the gap between transformers' top two logits at each generated position: what a margin is measured against
        gaps = [float(t[0] - t[1]) for t in (torch.topk(step[0].float(), 2).values for step in gen.scores)]
        out.append({"id": p["id"], "prompt_ids": ids, "greedy": gen.sequences[0, len(ids):].tolist(),
                    "median_top2_gap": sorted(gaps)[len(gaps) // 2]})
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hf", required=True)
    ap.add_argument("--gguf", action="append", required=True)
    ap.add_argument("--greedy-bin", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--kv", action="append", choices=["f16", "f32"],
                    help="llama.cpp KV cache type(s) to check (default: f16, llama.cpp's default)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    prompts = [json.loads(line) for line in open(a.prompts) if line.strip()]
    prompts = [p for p in prompts if "prompt" in p]
    prompts = prompts[::max(1, len(prompts) // a.limit)][:a.limit]  # spread over the file (its categories)
    tok, model = load_transformers(a.hf)
    ref = transformers_reference(tok, model, prompts, a.new_tokens)
    margins = {}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for p, r in zip(prompts, ref):
            f.write(p["prompt"].encode("utf-8").hex() + " " + ",".join(map(str, r["prompt_ids"])) + "\n")
        cases = f.name
    report = {"hf": a.hf, "new_tokens": a.new_tokens, "prompts": [p["id"] for p in prompts], "models": []}
    failed = False
    for g, kv in [(g, kv) for g in a.gguf for kv in (a.kv or ["f16"])]:
        run = subprocess.run([a.greedy_bin, g, str(a.new_tokens), cases, kv], capture_output=True, text=True, errors="replace")
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            raise SystemExit(f"greedy_check: {a.greedy_bin} failed on {g}")
        rows = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        entry = {"gguf": os.path.basename(g), "kv": kv, "cases": []}
        for p, r, row in zip(prompts, ref, rows):
            same_tok = row["tokenized"] == r["prompt_ids"]
            same = row["greedy"] == r["greedy"]
            first = next((i for i, (x, y) in enumerate(zip(row["greedy"], r["greedy"])) if x != y), None)
            gap = None
            if first is not None:
                key = (p["id"], first, row["greedy"][first])
                if key not in margins:
                    margins[key] = margin(model, r["prompt_ids"] + r["greedy"][:first], r["greedy"][first],
                                          row["greedy"][first])
                gap = margins[key]
            entry["cases"].append({"id": p["id"], "prompt_tokens": len(r["prompt_ids"]), "tokenization_equal": same_tok,
                                   "greedy_equal": same, "first_difference": first, "hf_margin": gap,
                                   "hf_median_top2_gap": r["median_top2_gap"],
                                   **({} if same_tok else {"llama_tokens": row["tokenized"],
                                                           "hf_tokens": r["prompt_ids"]})})
            verdict = "equal" if same else (f"differ from position {first} (transformers margin {gap:.3g}; its median "
                                            f"top-two gap {r['median_top2_gap']:.3g})")
            print(f"{os.path.basename(g):28s} kv {kv} {p['id']:12s} tokenization {'equal' if same_tok else 'DIFFERS'}, "
                  f"greedy {a.new_tokens} ids {verdict}")
            strict = "-f32" in os.path.basename(g)
            if not same_tok or (strict and not same):
                failed = True
        entry["greedy_equal"] = sum(c["greedy_equal"] for c in entry["cases"])
        entry["tokenization_equal"] = sum(c["tokenization_equal"] for c in entry["cases"])
        report["models"].append(entry)
    os.unlink(cases)
    for m in report["models"]:
        print(f"greedy_check: {m['gguf']} (KV {m['kv']}): greedy equal on {m['greedy_equal']}/{len(prompts)} prompts, "
              f"tokenization equal on {m['tokenization_equal']}/{len(prompts)}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
