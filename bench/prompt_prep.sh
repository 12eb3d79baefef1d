#!/usr/bin/env bash
# Preparing exact-length prompts before a run, on one core: aibench with the
# local tokenizer and through the simulator's /tokenize (N prompts), and
# vLLM's own random dataset (`vllm bench serve --dataset-name random`) with
# the same tokenizer (PEER_N prompts: it is about 100x slower), three runs
# each; prompts per second compared.
#   bench/prompt_prep.sh [N=100000] [LEN=1000] [PEER_N=10000]
source "$(dirname "$0")/common.sh"
N=${N:-100000}
LEN=${LEN:-1000}
PEER_N=${PEER_N:-10000}
TOK=tests/fixtures/tokenizer-en-bpe-8k
VLLM_PY=${VLLM_PY:-/opt/peers/vllm/bin/python}
cargo build --release --quiet -p aibench-core --example prompt_prep
echo "machine: $(machine)"
for i in 1 2 3; do
  taskset -c 0 target/release/examples/prompt_prep "$N" "$LEN" local "$TOK" >> "$WORK/local.jsonl"
  taskset -c 0 target/release/examples/prompt_prep "$N" "$LEN" server "$TOK" >> "$WORK/server.jsonl"
  if [ -x "$VLLM_PY" ]; then
    HF_HUB_OFFLINE=1 taskset -c 0 "$VLLM_PY" bench/prompt_prep_vllm.py "$PEER_N" "$LEN" "$TOK" 2>/dev/null | tail -1 >> "$WORK/vllm.jsonl"
  fi
done
python3 - "$WORK" <<'PY'
import json, os, statistics, sys
w = sys.argv[1]
def load(name):
    p = os.path.join(w, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
def mmm(xs):
    return f"{min(xs):.2f} / {statistics.median(xs):.2f} / {max(xs):.2f}"
rate = {}
for name, label in [("local.jsonl", "aibench, local tokenizer"), ("server.jsonl", "aibench, simulator /tokenize"), ("vllm.jsonl", "vLLM random dataset")]:
    rs = load(name)
    if not rs:
        print(f"{label}: not measured (no vLLM peer; see shared/peers/README.md)")
        continue
    r0 = rs[0]
    rate[name] = statistics.median(r["prompts_per_s"] for r in rs)
    print(f"{label}: {r0['prompts']:,} prompts of {r0['tokens']} tokens: seconds min/median/max {mmm([r['seconds'] for r in rs])}, "
          f"{rate[name]:,.0f} prompts/s, peak RSS growth {statistics.median(r['peak_rss_growth_mb'] for r in rs):.0f} MiB, "
          f"recounted {r0['recounted']} exact: {all(r['recounted_exact'] for r in rs)}")
for name in ["local.jsonl", "server.jsonl"]:
    if name in rate and "vllm.jsonl" in rate:
        print(f"ratio {name.split('.')[0]} / vLLM (prompts per second): {rate[name] / rate['vllm.jsonl']:.1f}")
PY
