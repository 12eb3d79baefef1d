#!/usr/bin/env bash
# Benchmark 4: peak memory of aibench for N (default 1,000,000) streamed
# requests against `aibench sim --profile instant`: histograms, not samples.
#   bench/memory_1m.sh [N=1000000] [USERS=64]
source "$(dirname "$0")/common.sh"
N=${N:-1000000}
USERS=${USERS:-64}
start_sim instant
echo "machine: $(machine)"
START=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$WORK/rss.txt" $CLIENT "$AIBENCH" bench --url "$SIM_URL" --users "$USERS" --requests "$N" \
  --prompt-tokens 8 --output-tokens 4 --json "$WORK/r.json" > /dev/null
END=$(date +%s.%N)
python3 - "$WORK/r.json" "$(cat "$WORK/rss.txt")" "$START" "$END" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); rss_kb = int(sys.argv[2])
print(f"requests: {d['total_requests']:,} ({d['successes']:,} ok, {d['errors']} errors) in {float(sys.argv[4]) - float(sys.argv[3]):.0f} s wall")
print(f"peak RSS: {rss_kb / 1024:.1f} MiB   (goal < 100 MB)")
print(f"ITL samples held in histograms: {d['itl_ms']['count']:,}")
PY
