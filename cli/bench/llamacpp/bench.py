"""Time llama.cpp (plain, draft-model speculative, prompt lookup) next to Specula's CLI on the same prompts.

    python bench.py --name embedded --bin LLAMA_BUILD/bin --jar cli/target/specula-cli.jar [--jar LABEL=JAR ...]
        --prompts cli/bench/prompts.jsonl [--limit 4] [--new-tokens 128] [--threads 1,2] [--repeat 3]
        --gguf f32=target-f32.gguf --gguf f16=target-f16.gguf [--draft-gguf f32=draft-f32.gguf ...]
        [--specula-target [LABEL=]DIR ... [--specula-draft DIR] [--specula-policies plain,fixed:4]]
        [--draft-max 4] [--lookup-max 4] [--modes plain,draft,lookup] --json OUT.json --markdown OUT.md

Every run is its own process, interleaved: repeat -> threads -> prompt -> engine configuration, so a slow
minute of the machine hits all engines alike. Per run it records tokens/s including the prefill
(new tokens / (prompt time + decode time)) and decode-only tokens/s:
- Specula: ``bench`` on a one-prompt file (--repeat 1 --ignore-eos); tokens_per_second is new tokens / wall
  time (prefill included); decode-only = 1000 / target_step_ms for plain. Before it, in the same JVM, the
  warm-up: --specula-warmup N generations of a prompt of the file that is not measured (--warmup-prompts).
  N = 1 leaves the JIT compiler at work during the measured run (a JVM that just started); a larger N
  measures a warm JVM, as a running server is. A list (1,10) runs each, labelled "warm N" past the first.
- llama-completion: llama_perf_context_print's prompt eval and eval times (-no-cnv --ignore-eos --temp 0).
- llama-speculative-simple / llama-lookup: their "encoded ... in" and "decoded ... in" lines; their own
  n_drafted / n_accept.
The table gives, per configuration and thread count, the median over repeats of (sum of new tokens / sum of
seconds over the prompts), and the min-max over repeats.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


class RunFailed(Exception):
    """One engine configuration could not run (a model its engine cannot load or tokenize, no timings): the run goes
    on without it, and the report lists it with the reason."""


def run(cmd, timeout=900):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
                       timeout=timeout)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-2000:] + p.stderr[-4000:])
        lines = [line for line in (p.stderr + p.stdout).splitlines() if "error" in line.lower() or "what()" in line]
        raise RunFailed(f"{os.path.basename(cmd[0])} exited with {p.returncode}"
                        + (f": {lines[-1].strip()[:300]}" if lines else ""))
    return p.stdout, p.stderr, time.time() - t0


def llama_completion(a, gguf, prompt, threads):
    cmd = [os.path.join(a.bin, "llama-completion"), "-m", gguf, "-p", prompt, "-n", str(a.new_tokens),
           "--temp", "0", "--ignore-eos", "-no-cnv", "-t", str(threads), "-tb", str(threads), "-c", str(a.ctx),
           "--no-display-prompt"]
    for attempt in range(3):  # llama.cpp logs from a background thread: now and then the last lines are lost
        out, err, _ = run(cmd)
        err = out + err
        pm = re.search(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens", err)
        em = re.search(r"\s eval time =\s*([\d.]+) ms /\s*(\d+) runs", err)
        if pm and em:
            break
        print("bench.py: llama-completion printed no llama_perf timings; running it again", file=sys.stderr)
    if not pm or not em:
        sys.stderr.write(err[-3000:])
        raise RunFailed("no llama_perf timings in llama-completion's output")
    prompt_ms, prompt_n, eval_ms, eval_n = float(pm.group(1)), int(pm.group(2)), float(em.group(1)), int(em.group(2))
    return {"new_tokens": a.new_tokens, "prompt_tokens": prompt_n, "seconds": (prompt_ms + eval_ms) / 1000,
            "decode_seconds": eval_ms / 1000, "decode_tokens": eval_n}


def parse_spec(err, what, required=True):
    enc = re.search(r"encoded\s+(\d+) tokens in\s+([\d.]+) seconds", err)
    dec = re.search(r"decoded\s+(\d+) tokens in\s+([\d.]+) seconds", err)
    drafted = re.search(r"n_drafted\s*=\s*(\d+)", err)
    accept = re.search(r"n_accept\s*=\s*(\d+)", err)
    if not enc or not dec:
        if not required:
            return None
        sys.stderr.write(err[-3000:])
        raise RunFailed(f"no encoded/decoded lines in {what}'s output")
    n = int(dec.group(1))
    return {"new_tokens": n, "prompt_tokens": int(enc.group(1)),
            "seconds": float(enc.group(2)) + float(dec.group(2)), "decode_seconds": float(dec.group(2)),
            "decode_tokens": n, "drafted": int(drafted.group(1)) if drafted else None,
            "accepted": int(accept.group(1)) if accept else None}


def llama_draft(a, gguf, draft, prompt, threads, n_max):
    cmd = [os.path.join(a.bin, "llama-speculative-simple"), "-m", gguf, "-md", draft, "-p", prompt,
           "-n", str(a.new_tokens), "--temp", "0", "--ignore-eos", "-t", str(threads), "-tb", str(threads),
           "-td", str(threads), "-tbd", str(threads), "-c", str(a.ctx), "--spec-type", "draft-simple", "--spec-draft-n-max", str(n_max),
           "--spec-draft-n-min", "0", "--spec-draft-p-min", "0"]
    return run_spec(cmd, "llama-speculative-simple")


def llama_lookup(a, gguf, prompt, threads, n_max):
    cmd = [os.path.join(a.bin, "llama-lookup"), "-m", gguf, "-p", prompt, "-n", str(a.new_tokens), "--temp", "0",
           "--ignore-eos", "-t", str(threads), "-tb", str(threads), "-c", str(a.ctx),
           "--spec-draft-n-max", str(n_max)]
    return run_spec(cmd, "llama-lookup")


def run_spec(cmd, what):
    # llama.cpp logs from a background thread; now and then the last lines of a successful run are lost
    for _ in range(2):
        out, err, _ = run(cmd)
        res = parse_spec(out + err, what, required=False)
        if res:
            return res
        print(f"bench.py: {what} printed no timings; running it again", file=sys.stderr)
    out, err, _ = run(cmd)
    return parse_spec(out + err, what)


def specula(a, jar, target, prompt_row, warmup_row, warmup, threads, kernels=None):
    with tempfile.TemporaryDirectory() as d:
        pf, wf = os.path.join(d, "p.jsonl"), os.path.join(d, "w.jsonl")
        for path, row in ((pf, prompt_row), (wf, warmup_row)):
            with open(path, "w") as f:
                f.write(json.dumps({"id": row["id"], "category": row.get("category", "all"),
                                    "prompt": row["prompt"]}) + "\n")
        jf = os.path.join(d, "out.json")
        cmd = ["java", *a.specula_java_options.split(), "-jar", jar, "bench", "--target", target, "--prompts", pf,
               "--max-new-tokens", str(a.new_tokens), "--policies", a.specula_policies, "--repeat", "1",
               "--warmup", str(warmup), "--warmup-prompts", wf, "--ignore-eos", "--threads", str(threads),
               "--json", jf]
        if a.specula_draft:
            cmd += ["--draft", a.specula_draft]
        if a.specula_spinning:
            cmd += ["--spinning"]
        if a.specula_proposers:
            cmd += ["--proposers", a.specula_proposers]
        if kernels:
            cmd += ["--kernels", kernels]
        run(cmd)
        rows = json.load(open(jf))["results"]
    res = {}
    for r in rows:
        if r["category"] != "all":
            continue
        n = r["generated_tokens"]
        secs = n / r["tokens_per_second"]
        entry = {"new_tokens": n, "seconds": secs, "mean_accepted_length": r.get("mean_accepted_length"),
                 "acceptance_rate": r.get("acceptance_rate") if r["policy"] != "plain" else None,
                 "target_step_ms": r.get("target_step_ms")}
        if r["policy"] == "plain" and r.get("target_step_ms"):
            entry["decode_seconds"] = (n - 1) * r["target_step_ms"] / 1000
            entry["decode_tokens"] = n - 1
        res[r["policy"] + (" " + r["proposer"] if r.get("proposer") and a.specula_proposers else "")] = entry
    return res


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--bin", required=True, help="llama.cpp build/bin")
    ap.add_argument("--jar", action="append", default=[],
                    help="Specula's CLI jar; repeat as LABEL=JAR to time several jars interleaved (configurations "
                         "'Specula@LABEL ...')")
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--gguf", action="append", default=[], help="PRECISION=target.gguf")
    ap.add_argument("--draft-gguf", action="append", default=[], help="PRECISION=draft.gguf")
    ap.add_argument("--specula-target", action="append", default=[],
                    help="DIR or LABEL=DIR (repeatable; label fp32 without one), e.g. int4=/models/q-int4")
    ap.add_argument("--specula-draft")
    ap.add_argument("--specula-spinning", action="store_true",
                    help="Specula's idle ONNX Runtime threads spin (--spinning), as llama.cpp's do")
    ap.add_argument("--specula-policies", default="plain")
    ap.add_argument("--specula-java-options", default="",
                    help="options of Specula's JVM, e.g. -Xmx2g (one string, split at spaces)")
    ap.add_argument("--specula-warmup", default="1",
                    help="warm-up generations in Specula's JVM before the measured one, e.g. 1 or 1,10 (both)")
    ap.add_argument("--specula-proposers",
                    help="Specula's proposers, each run with each policy (bench --proposers), e.g. model,ngram")
    ap.add_argument("--specula-kernels",
                    help="Specula's float32 MatMul kernels (bench --kernels), each run with each target, e.g. "
                         "onnx-runtime,specula (configurations 'Specula LABEL/KERNELS ...'); unset: the CLI's default")
    ap.add_argument("--draft-max", default="4", help="llama.cpp draft lengths, e.g. 4,8")
    ap.add_argument("--lookup-max", default="4", help="llama.cpp lookup draft lengths, e.g. 4,8")
    ap.add_argument("--modes", default="plain,draft,lookup")
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown", required=True)
    a = ap.parse_args(argv)
    prompts = [json.loads(line) for line in open(a.prompts) if line.strip()]
    prompts = [p for p in prompts if "prompt" in p]
    measured = prompts[::max(1, len(prompts) // a.limit)][:a.limit]  # spread over the file (its categories)
    # each measured prompt warms Specula's JVM up on the next prompt of the file that is not measured
    spare = [p for p in prompts if p not in measured] or measured
    warmup_of = {p["id"]: next((q for q in spare if prompts.index(q) > prompts.index(p)), spare[0]) for p in measured}
    prompts = measured
    warmups = [int(w) for w in a.specula_warmup.split(",")]
    targets = dict(x.split("=", 1) for x in a.gguf)
    drafts = dict(x.split("=", 1) for x in a.draft_gguf)
    modes = a.modes.split(",")
    threads = [int(t) for t in a.threads.split(",")]
    runs = []
    failed = {}  # group (one process's configurations) -> why it was left out
    for rep in range(a.repeat):
        for t in threads:
            for p in prompts:
                def record(config, result):
                    runs.append({"config": config, "threads": t, "repeat": rep, "prompt": p["id"], **result})
                    tps = result["new_tokens"] / result["seconds"]
                    print(f"[{a.name}] r{rep} t{t} {p['id']:10s} {config:34s} {tps:8.1f} tok/s", flush=True)
                def attempt(group, measure):
                    # one process's configurations (a group): once it fails, the group is left out from then on
                    # (its table rows would lack prompts)
                    if group in failed:
                        return
                    try:
                        results = measure()
                    except RunFailed as ex:
                        failed[group] = f"{ex} (prompt {p['id']}, {t} thread(s))"
                        print(f"[{a.name}] r{rep} t{t} {p['id']:10s} {group}: FAILED, left out: {ex}", flush=True)
                        return
                    for c, result in results.items():
                        record(c, {**result, "group": group})
                for jar_spec in a.jar:
                    labelled = "=" in jar_spec and "/" not in jar_spec.split("=", 1)[0]
                    jar_label, jar = jar_spec.split("=", 1) if labelled else ("", jar_spec)
                    engine = f"Specula@{jar_label}" if jar_label and len(a.jar) > 1 else "Specula"
                    kernel_choices = a.specula_kernels.split(",") if a.specula_kernels else [None]
                    for spec in a.specula_target:
                        base, target = spec.split("=", 1) if "=" in spec else ("fp32", spec)
                        for kernels in kernel_choices:
                            label = f"{base}/{kernels}" if kernels and len(kernel_choices) > 1 else base
                            for w in warmups:
                                warm = f" (warm {w})" if w != warmups[0] else ""
                                attempt(f"{engine} {label}{warm}", lambda: {
                                    f"{engine} {label} {k}{warm}": v for k, v in specula(
                                        a, jar, target, p, warmup_of[p["id"]], w, t, kernels).items()})
                for prec, g in targets.items():
                    if "plain" in modes:
                        c = f"llama.cpp {prec} plain"
                        attempt(c, lambda: {c: llama_completion(a, g, p["prompt"], t)})
                    if "draft" in modes and prec in drafts:
                        for n in a.draft_max.split(","):
                            c = f"llama.cpp {prec} draft:{n}"
                            attempt(c, lambda: {c: llama_draft(a, g, drafts[prec], p["prompt"], t, int(n))})
                    if "lookup" in modes:
                        for n in a.lookup_max.split(","):
                            c = f"llama.cpp {prec} lookup:{n}"
                            attempt(c, lambda: {c: llama_lookup(a, g, p["prompt"], t, int(n))})
    runs = [r for r in runs if r["group"] not in failed]
    summary = summarize(runs)
    report = {"name": a.name, "settings": {k: v for k, v in vars(a).items() if k not in ("json", "markdown")},
              "machine": machine(), "summary": summary, "failed": failed, "runs": runs}
    with open(a.json, "w") as f:
        json.dump(report, f, indent=1)
    md = markdown(a, summary)
    if failed:
        md += "\nLeft out: configurations that failed (the first failure of each):\n\n" + "".join(
            f"- {c}: {why}\n" for c, why in failed.items())
    with open(a.markdown, "w") as f:
        f.write(md)
    print(md)
    return 0


def summarize(runs):
    groups = {}
    for r in runs:
        groups.setdefault((r["config"], r["threads"]), {}).setdefault(r["repeat"], []).append(r)
    out = []
    for (config, t), reps in groups.items():
        tps, dec, acc = [], [], []
        for rows in reps.values():
            tps.append(sum(x["new_tokens"] for x in rows) / sum(x["seconds"] for x in rows))
            if all(x.get("decode_seconds") for x in rows):
                dec.append(sum(x["decode_tokens"] for x in rows) / sum(x["decode_seconds"] for x in rows))
            if all(x.get("drafted") and x.get("accepted") is not None for x in rows):
                acc.append(sum(x["accepted"] for x in rows) / sum(x["drafted"] for x in rows))
            elif all(x.get("acceptance_rate") is not None for x in rows):
                acc.append(statistics.mean(x["acceptance_rate"] for x in rows))
        out.append({"config": config, "threads": t, "tokens_per_second": statistics.median(tps),
                    "tokens_per_second_range": [min(tps), max(tps)],
                    "decode_tokens_per_second": statistics.median(dec) if dec else None,
                    "acceptance": statistics.median(acc) if acc else None,
                    "mean_accepted_length": statistics.median(
                        [x["mean_accepted_length"] for rows in reps.values() for x in rows
                         if x.get("mean_accepted_length")] or [0]) or None})
    return out


def markdown(a, summary):
    lines = [f"**{a.name}**: {a.limit} prompts from `{os.path.basename(a.prompts)}`, {a.new_tokens} new tokens "
             f"(--ignore-eos, greedy), {a.repeat} repeats; tok/s = new tokens / (prefill + decode); median over "
             f"repeats [min–max]. Specula's JVM warms up with {a.specula_warmup.split(',')[0]} generation(s) of another "
             f"prompt first (\"warm N\": N)" + (f"; its options: `{a.specula_java_options}`" if a.specula_java_options
                                                 else "") + ".", "",
             "| engine / configuration | threads | tok/s incl. prefill | decode-only tok/s | acceptance (/ tokens per target call) |",
             "|---|---:|---:|---:|---:|"]
    for s in sorted(summary, key=lambda s: (s["threads"], s["config"])):
        lo, hi = s["tokens_per_second_range"]
        dec = f"{s['decode_tokens_per_second']:.1f}" if s["decode_tokens_per_second"] else "–"
        acc = "–"
        if s["acceptance"] is not None:
            acc = f"{s['acceptance']:.2f}"
            if s["mean_accepted_length"]:
                acc += f" / {s['mean_accepted_length']:.2f}"
        lines.append(f"| {s['config']} | {s['threads']} | {s['tokens_per_second']:.1f} [{lo:.1f}–{hi:.1f}] | {dec} "
                     f"| {acc} |")
    return "\n".join(lines) + "\n"


def machine():
    info = {"cores": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    return info


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
