"""``scale-report``: docs/scaling.md's tables from ``specula-cli cost --json`` files.

Reads every ``*.json`` written by ``cli/bench/scale/run.sh`` (one per model, format and thread count: the file name
is ``MODEL@FORMAT@tT.json`` for a decode run and ``MODEL@FORMAT@tT@prefill[N].json`` for long-prefill runs) and
prints Markdown: cost per model, verification cost t(k)/t(1), prefill, and for each draft/target pair the draft/target
cost ratio and the speedup projected from the measured costs.

The projection is Leviathan et al.'s (arXiv 2211.17192, section 3.4) expected tokens per round,
(1 − α^(γ+1)) / (1 − α), divided by the round's cost in target steps, γ·c + t(γ+1)/t(1): γ draft steps of relative
cost c = t_draft(1)/t_target(1), and one verification of γ + 1 tokens, measured rather than assumed equal to one step.
α is the per-token acceptance rate; random weights measure cost, not acceptance, so α is given (0.6, 0.7, 0.8) and
the best γ in 1..15 is reported.
"""
import argparse
import glob
import json
import os
import re
import sys

NAME = re.compile(r"^(?P<model>[^@]+)@(?P<format>[^@]+)@t(?P<threads>\d+)(?P<prefill>@prefill[0-9]*)?\.json$")


def load(directories):
    """{(model, format, threads): [decode runs, one per directory]}, [((model, format, threads), prefill run)]."""
    decode, prefill = {}, []
    for directory in directories:
        for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
            m = NAME.match(os.path.basename(path))
            if not m:
                continue
            with open(path) as f:
                run = json.load(f)
            key = (m["model"], m["format"], int(m["threads"]))
            if m["prefill"]:
                prefill.append((key, run))
            else:
                decode.setdefault(key, []).append(run)
    return decode, prefill


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def t_of(run):
    """t(k) in ms by k."""
    return {row["k"]: row["ms"] for row in run["steps"]["by_k"]}


def merged(runs):
    """One figure per measurement over the processes that measured it: medians, and the plain speed's range."""
    ks = sorted(t_of(runs[0]))
    plain = [r["plain"]["ms_per_token"] for r in runs]
    return dict(runs=len(runs), file_bytes=runs[0]["file_bytes"], kv_bytes_per_token=runs[0]["kv_bytes_per_token"],
                load_ms=median([r["load_ms"] for r in runs]),
                rss_after_load_bytes=median([r["rss_after_load_bytes"] for r in runs]),
                plain_ms=median(plain), plain_range=(min(plain), max(plain)),
                t1=median([t_of(r)[1] for r in runs]),
                ratio={k: median([t_of(r)[k] / t_of(r)[1] for r in runs]) for k in ks})


def projected(alpha, c, t, max_gamma=15):
    """Best (γ, speedup) over γ = 1..max_gamma for acceptance α, draft cost ratio c and verification costs
    t(k)/t(1) by k; a speedup below 1 means plain decoding is faster."""
    best = None
    for gamma in range(1, max_gamma + 1):
        if gamma + 1 not in t:
            break
        tokens = (1 - alpha ** (gamma + 1)) / (1 - alpha)
        cost = gamma * c + t[gamma + 1]
        if best is None or tokens / cost > best[1]:
            best = (gamma, tokens / cost)
    return best


def gib(b):
    return f"{b / 2 ** 30:.2f}"


def report(directories, pairs, alphas=(0.6, 0.7, 0.8)):
    runs, prefill = load(directories)
    decode = {key: merged(r) for key, r in runs.items()}
    models = sorted({(m, f) for m, f, _ in decode}, key=lambda mf: (decode_order(mf[0]), mf[1]))
    threads = sorted({t for _, _, t in decode})
    counts = sorted({d["runs"] for d in decode.values()})
    out = []
    out.append(f"### Cost per model (median of {'/'.join(map(str, counts))} processes each)\n")
    head = "| model | format | files (GB) | load (s) | RSS after load (GiB) | KV bytes / token |"
    sep = "|---|---|---:|---:|---:|---:|"
    for t in threads:
        head += f" plain ms/token, {t} thr (range) | t(1) ms, {t} thr |"
        sep += "---:|---:|"
    out += [head, sep]
    for m, f in models:
        first = next(decode[(m, f, t)] for t in threads if (m, f, t) in decode)
        load_run = decode.get((m, f, max(threads)), first)
        row = (f"| {m} | {f} | {first['file_bytes'] / 1e9:.3f} | {load_run['load_ms'] / 1e3:.1f} | "
               f"{gib(load_run['rss_after_load_bytes'])} | {first['kv_bytes_per_token']:,} |")
        for t in threads:
            d = decode.get((m, f, t))
            row += (f" {d['plain_ms']:.1f} ({d['plain_range'][0]:.0f}–{d['plain_range'][1]:.0f}) | {d['t1']:.1f} |"
                    if d else " — | — |")
        out.append(row)
    for t in threads:
        out.append(f"\n### Verification cost t(k)/t(1), {t} thread{'s' if t > 1 else ''}\n")
        ks = sorted(next(iter(decode.values()))["ratio"])
        out.append("| model | format | " + " | ".join(str(k) for k in ks) + " |")
        out.append("|---|---|" + "---:|" * len(ks))
        for m, f in models:
            d = decode.get((m, f, t))
            if d:
                out.append(f"| {m} | {f} | " + " | ".join(f"{d['ratio'][k]:.2f}" for k in ks) + " |")
    out.append("\n### Prefill\n")
    out.append("| model | format | threads | tokens | ms | tokens/s | peak RSS (GiB) |")
    out.append("|---|---|---:|---:|---:|---:|---:|")
    rows = []
    for (m, f, t), run in [(key, r) for key, rs in runs.items() for r in rs[:1]] + prefill:
        for row in run["prefill"]:
            if "skipped" not in row:
                rows.append(((m, f, t), row))
    for (m, f, t), row in sorted(rows, key=lambda r: (decode_order(r[0][0]), r[0][1], r[0][2], r[1]["tokens"])):
        peak = row.get("peak_rss_bytes", row.get("peak_rss_since_start_bytes"))
        out.append(f"| {m} | {f} | {t} | {row['tokens']:,} | {row['ms']:,.0f} | {row['tokens_per_second']:,.0f} "
                   f"| {gib(peak)} |")
    out.append("\n### Draft/target cost ratio and projected speedup\n")
    out.append("| target | draft | threads | c = t_draft(1)/t_target(1) | "
               + " | ".join(f"α = {a}: best γ, speedup" for a in alphas) + " |")
    out.append("|---|---|---:|---:|" + "---|" * len(alphas))
    for target, draft in pairs:
        for t in threads:
            tr, dr = decode.get((*target, t)), decode.get((*draft, t))
            if not tr or not dr:
                continue
            tt = tr["ratio"]
            c = dr["t1"] / tr["t1"]
            cells = []
            for a in alphas:
                gamma, speedup = projected(a, c, tt)
                cells.append(f"γ {gamma}: **{speedup:.2f}x**")
            out.append(f"| {target[0]} {target[1]} | {draft[0]} {draft[1]} | {t} | {c:.3f} | " + " | ".join(cells)
                       + " |")
    return "\n".join(out) + "\n"


ORDER = ["smollm2-135m", "qwen2.5-0.5b", "qwen2.5-1.5b", "smollm2-1.7b"]


def decode_order(model):
    return ORDER.index(model) if model in ORDER else len(ORDER)


def main(argv):
    p = argparse.ArgumentParser(prog="specula_tools scale-report", description=__doc__.split("\n")[0])
    p.add_argument("directories", nargs="+",
                   help="directories of cost JSON files (cli/bench/scale/run.sh); runs of the same model, format and "
                        "thread count in several directories are merged by their medians")
    p.add_argument("--pair", action="append", default=[],
                   help="TARGET_MODEL@FORMAT:DRAFT_MODEL@FORMAT, e.g. qwen2.5-1.5b@int4:qwen2.5-0.5b@int4 "
                        "(repeatable; default: the issue's pairs in fp32 and in int4)")
    a = p.parse_args(argv)
    pairs = [tuple(tuple(side.split("@", 1)) for side in spec.split(":")) for spec in a.pair]
    if not pairs:
        pairs = [((t, f), (d, f)) for t, d in (("qwen2.5-1.5b", "qwen2.5-0.5b"), ("smollm2-1.7b", "smollm2-135m"))
                 for f in ("fp32", "int4")]
    sys.stdout.write(report(a.directories, pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
