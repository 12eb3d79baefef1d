#!/usr/bin/env bash
# Loading a 1,000,000-line Mooncake-style trace (written here, seeded: about
# 8 hash ids a line, roots of shared blocks as in Mooncake's traces), three runs:
# aibench's loader against Python reading the same file with json.loads per
# line (what Python benchmark clients do); seconds and peak memory, and the
# ratio. Goals: under 5 s and under 200 MB.
#   bench/trace_load.sh [LINES=1000000]
source "$(dirname "$0")/common.sh"
LINES=${LINES:-1000000}
TRACE="$WORK/trace.jsonl"
cargo build --release --quiet -p aibench-core --example trace_load
echo "machine: $(machine)"
python3 - "$TRACE" "$LINES" <<'PY'
import json, random, sys
rng = random.Random(1)
path, n = sys.argv[1], int(sys.argv[2])
t, next_id = 0.0, 0
roots = []
with open(path, "w") as f:
    for i in range(n):
        if not roots or rng.random() < 0.3:
            k = rng.randint(1, 16)
            roots.append(list(range(next_id, next_id + k)))
            next_id += k
            roots = roots[-1000:]
        root = rng.choice(roots)
        ids = root[: rng.randint(0, len(root))] + list(range(next_id, next_id + rng.randint(1, 6)))
        next_id += len(ids)
        f.write(json.dumps({"timestamp": int(t), "input_length": 512 * (len(ids) - 1) + rng.randint(1, 512),
                            "output_length": rng.randint(1, 800), "hash_ids": ids}) + "\n")
        t += rng.expovariate(1 / 20.0)
PY
echo "trace: $(wc -l < "$TRACE") lines, $(du -m "$TRACE" | cut -f1) MB"
for i in 1 2 3; do
  target/release/examples/trace_load "$TRACE" >> "$WORK/aibench.jsonl"
  /usr/bin/time -f '%e %M' -o "$WORK/py.time" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(len(rows))' "$TRACE" > /dev/null
  cat "$WORK/py.time" >> "$WORK/py.txt"
done
python3 - "$WORK" <<'PY'
import json, os, statistics, sys
w = sys.argv[1]
a = [json.loads(l) for l in open(os.path.join(w, "aibench.jsonl"))]
p = [tuple(map(float, l.split())) for l in open(os.path.join(w, "py.txt"))]
def mmm(xs, d=2):
    return f"{min(xs):.{d}f} / {statistics.median(xs):.{d}f} / {max(xs):.{d}f}"
s = [r["seconds"] for r in a]
m = [r["peak_rss_mb"] for r in a]
ps = [x[0] for x in p]
pm = [x[1] / 1024 for x in p]
print(f"aibench: {a[0]['lines']:,} lines, {a[0]['hash_ids']:,} hash ids: seconds min/median/max {mmm(s)}, peak RSS {mmm(m, 0)} MiB")
print(f"python json.loads per line: seconds {mmm(ps)}, peak RSS {mmm(pm, 0)} MiB")
print(f"ratio: aibench loads {statistics.median(ps) / statistics.median(s):.1f}x faster in "
      f"{statistics.median(m) / statistics.median(pm):.2f}x the memory (goals: < 5 s, < 200 MB: "
      f"{'met' if statistics.median(s) < 5 and max(m) < 200 else 'NOT met'})")
PY
