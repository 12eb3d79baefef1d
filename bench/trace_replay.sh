#!/usr/bin/env bash
# Replaying a trace at its own rate: the first N lines of a seeded
# Mooncake-style trace (mean gap 20 ms, bursty: exponential gaps) against the
# instant simulator (with the tokenizer) pinned to CPU 0, aibench on CPU 1,
# three runs. The peer is the trace itself: achieved rate / offered rate,
# send lag, and the trace's gaps against the gaps as sent.
#   bench/trace_replay.sh [N=1000]
source "$(dirname "$0")/common.sh"
N=${N:-1000}
TOK=tests/fixtures/tokenizer-en-bpe-8k
echo "machine: $(machine)"
python3 - "$WORK/trace.jsonl" "$N" <<'PY'
import json, random, sys
rng = random.Random(2)
t, nid, roots = 0.0, 0, []
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        if not roots or rng.random() < 0.3:
            k = rng.randint(1, 4); roots.append(list(range(nid, nid + k))); nid += k
        root = rng.choice(roots)
        ids = root[: rng.randint(0, len(root))] + list(range(nid, nid + rng.randint(1, 2))); nid += len(ids)
        f.write(json.dumps({"timestamp": int(t), "input_length": 512 * (len(ids) - 1) + rng.randint(1, 512),
                            "output_length": rng.randint(1, 64), "hash_ids": ids}) + "\n")
        t += rng.expovariate(1 / 20.0)
PY
start_sim instant --tokenizer "$TOK"
for i in 1 2 3; do
  $CLIENT "$AIBENCH" run bench/trace_replay.lua "$SIM_URL" "$WORK/trace.jsonl" "$N" "$TOK" >> "$WORK/replay.jsonl"
done
python3 - "$WORK/replay.jsonl" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
def mmm(k, d=2):
    xs = [r[k] for r in rs]
    return f"{min(xs):.{d}f} / {statistics.median(xs):.{d}f} / {max(xs):.{d}f}"
r = rs[0]
print(f"{r['offered']} requests at the trace's rate (offered {r['requested']:.1f} req/s): sent "
      f"{'/'.join(str(x['sent']) for x in rs)}, errors {'/'.join(str(x['errors']) for x in rs)}, every prompt exact: {all(x['exact'] for x in rs)}")
print(f"achieved req/s min/median/max {mmm('achieved')}; ratio achieved/offered {statistics.median(x['achieved'] / x['requested'] for x in rs):.3f}")
print(f"send lag p50 {mmm('lag_p50', 3)} ms, p99 {mmm('lag_p99', 3)} ms; worst send offset {mmm('worst_offset')} ms")
print(f"gaps: trace mean {mmm('trace_gap_mean')} / p99 {mmm('trace_gap_p99')} ms; as sent mean {mmm('achieved_gap_mean')} / p99 {mmm('achieved_gap_p99')} ms")
print(f"client limited: {[x['client_limited'] for x in rs]}")
PY
