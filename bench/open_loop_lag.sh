#!/usr/bin/env bash
# Benchmark 3: open loop at RATE req/s against `aibench sim --profile instant`
# (CPU 0), aibench on CPU 1: send lag (intended -> ready to send) and the
# achieved rate.
#   bench/open_loop_lag.sh [RATE=5000] [DUR=10]
source "$(dirname "$0")/common.sh"
RATE=${RATE:-5000}
DUR=${DUR:-10}
start_sim instant
echo "machine: $(machine)"
$CLIENT "$AIBENCH" bench --url "$SIM_URL" --rate "$RATE" --arrival poisson --duration "$DUR" \
  --prompt-tokens 8 --output-tokens 8 --json "$WORK/r.json" > /dev/null
python3 - "$WORK/r.json" "$RATE" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); rate = float(sys.argv[2])
lag = d["send_lag_ms"]
print(f"requested {rate:,.0f} req/s, sent {d['rate']['achieved_req_per_sec']:,.0f} req/s, completed {d['throughput_req_per_sec']:,.0f} req/s, errors {d['errors']}")
print(f"send lag ms: p50 {lag['p50']:.3f}  p90 {lag['p90']:.3f}  p99 {lag['p99']:.3f}  p99.9 {lag['p999']:.3f}  max {lag['max']:.3f}   (goal p99 < 1 ms)")
print(f"latency ms: p50 {d['latency_ms']['p50']:.3f}  p99 {d['latency_ms']['p99']:.3f};  from intended p99 {d['latency_from_intended_ms']['p99']:.3f}")
print(f"client cpu: {d['client']['cpu_s']:.1f} s ({100*d['client']['cpu_util']:.0f}% of {d['client']['cores']} cores)")
PY
