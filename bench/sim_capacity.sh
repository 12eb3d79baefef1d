#!/usr/bin/env bash
# Simulator capacity (issue: "it must never be the bottleneck"): `aibench sim
# --profile instant` alone on CPU 0, wrk on CPU 1 posting streamed
# completions of OUT tokens. Tokens/s are read back from the simulator's own
# vllm:generation_tokens_total, so they count what was really streamed.
#   bench/sim_capacity.sh [CONNS=32] [DUR=10] [OUT=128]
source "$(dirname "$0")/common.sh"
CONNS=${CONNS:-32}
DUR=${DUR:-10}
OUT=${OUT:-128}
need wrk "apt-get install -y wrk"
start_sim instant
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"prompt": "hello world this is a prompt", "max_tokens": $OUT, "ignore_eos": true, "stream": true}'
wrk.headers["Content-Type"] = "application/json"
LUA
tokens() { curl -s "$SIM_URL/metrics" | awk '/^vllm:generation_tokens_total/{print $2}'; }
echo "machine: $(machine)"
T0=$(tokens)
$CLIENT wrk -t1 -c"$CONNS" -d"${DUR}s" -s "$WORK/post.lua" "$SIM_URL/v1/completions" > "$WORK/wrk.txt"
T1=$(tokens)
RPS=$(awk '/Requests\/sec/{print $2}' "$WORK/wrk.txt")
python3 - "$RPS" "$T0" "$T1" "$DUR" "$OUT" <<'PY'
import sys
rps, t0, t1, dur, out = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"streamed completions/s: {rps:,.0f}  ({out} tokens each)")
print(f"streamed tokens/s (server counter): {(t1 - t0) / dur:,.0f}   (goal > 200,000 on one core)")
PY
