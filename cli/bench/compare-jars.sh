#!/usr/bin/env bash
# Old jar vs new jar, interleaved in one session: direct decoding (plain, fixed:4, hf-heuristic; 128 tokens)
# and 8 clients through the batch scheduler (unpadded; plain, fixed:4; 64 tokens). Writes JSON per run.
set -euo pipefail
OLD=${OLD:?set OLD to the old specula-cli.jar}
NEW=${NEW:-cli/target/specula-cli.jar}
OUT=${OUT:-target/bench-compare}
PROMPTS=${PROMPTS:-cli/bench/code-prompts.jsonl}
ROUNDS=${ROUNDS:-3}
mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for which in old new; do
    jar=$OLD; [ "$which" = new ] && jar=$NEW
    java -jar "$jar" bench --prompts "$PROMPTS" --max-new-tokens 128 --policies plain,fixed:4,hf-heuristic \
      --repeat 1 --warmup 1 --ignore-eos --json "$OUT/direct-$which-$round.json" > /dev/null 2>&1
    java -jar "$jar" bench --prompts "$PROMPTS" --max-new-tokens 64 --policies plain,fixed:4 \
      --repeat 1 --warmup 1 --ignore-eos --concurrency 8 --batch-path unpadded \
      --json "$OUT/batch8-$which-$round.json" > /dev/null 2>&1
    echo "round $round $which done"
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
for kind in ['direct', 'batch8']:
    rows = {}
    for which in ['old', 'new']:
        for r in range(1, rounds + 1):
            data = json.load(open(f'{out}/{kind}-{which}-{r}.json'))
            for res in data['results']:
                if res.get('category', 'all') != 'all':
                    continue
                rows.setdefault(res['policy'], {}).setdefault(which, []).append(res['tokens_per_second'])
    print(f'\n{kind}: tokens/s per round (old | new), median ratio new/old')
    for policy, v in rows.items():
        o, n = v['old'], v['new']
        ratio = statistics.median(n) / statistics.median(o)
        print(f"| {policy} | {' / '.join(f'{x:.1f}' for x in o)} | {' / '.join(f'{x:.1f}' for x in n)} | {ratio:.3f}x |")
PY
