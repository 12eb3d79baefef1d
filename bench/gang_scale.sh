#!/usr/bin/env bash
# Many client nodes as one experiment, at scale, on this one machine: brings
# up N namespace nodes of the dev cluster (scripts/slurm-dev-cluster.sh up
# --nodes N), starts one simulator on the host's bridge address, and runs a
# client recipe as ONE SLURM job of N tasks, one per node, three times.
# Prints per run: the time from submit to the common start, the barrier's
# spread (latest minus earliest real start) and offset bound, the merge time
# (bench.merge of the N parts, timed alone), and memory per node (each
# slurmd's RSS; each client task's peak RSS from its result).
# Leaves the cluster at 3 nodes (the tests' layout) when it ends.
#   bench/gang_scale.sh [N=8] [DURATION_S=5]
source "$(dirname "$0")/common.sh"
N=${1:-8}
DUR=${2:-5}
[ "$(id -u)" -eq 0 ] || { echo "gang_scale: run as root (it reconfigures the dev cluster)" >&2; exit 1; }
restore() { scripts/slurm-dev-cluster.sh up --nodes 3 >/dev/null 2>&1 || echo "gang_scale: could not restore the 3-node cluster" >&2; cleanup; }
trap restore EXIT
echo "machine: $(machine)"
scripts/slurm-dev-cluster.sh up --nodes "$N" | tail -1
# The simulator on the host, reachable from every node on the bridge.
"$AIBENCH" sim --host 10.77.0.1 --port 0 --profile instant > "$WORK/sim.out" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/sim.out" ] && break; sleep 0.1; done
URL=$(head -1 "$WORK/sim.out")
export AIBENCH_HOME=$WORK/home
for run in 1 2 3; do
  t0=$(date +%s.%N)
  "$AIBENCH" client run --recipe vllm-simple-test --executor slurm --url "$URL" --out-dir "$WORK/results" \
    --set "orchestration.instances=$N" --set "orchestration.resources.nodes=$N" \
    --set "workload.duration_seconds=$DUR" --set "orchestration.resources.cpu_cores=1" \
    --set "orchestration.resources.memory_gb=0.5" > "$WORK/run.out" 2> "$WORK/run.err" \
    || { cat "$WORK/run.err" >&2; exit 1; }
  rss=$(ps -C slurmd -o rss= | awk '{s+=$1; n++} END {printf "%.1f", s/n/1024}')
  res=$(ls -t "$WORK"/results/*.json | head -1)
  jobdir=$(ls -td "$AIBENCH_HOME"/jobs/vllm-simple-test-* | head -1)
  cat > "$WORK/merge.lua" <<LUA
local bench, fs, time = require("aibench.bench"), require("aibench.fs"), require("aibench.time")
local parts = {}
for r = 0, $N - 1 do parts[#parts + 1] = bench.result(fs.read(fs.join("$jobdir", "result-" .. r .. ".json"))) end
local t = time.monotonic()
local m = bench.merge(parts, { allow_partial_overlap = true })
print(string.format("%.1f", (time.monotonic() - t) * 1000), m.total_requests)
LUA
  read -r merge_ms merged_total < <("$AIBENCH" run "$WORK/merge.lua")
  python3 - "$res" "$t0" "$N" "$run" "$rss" "$merge_ms" "$jobdir" <<'PY'
import json, sys, glob
res, t0, n, run, rss, merge_ms, jobdir = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
b = json.load(open(res))["bench"]
o = b["overlap"]
parts = [json.load(open(f)) for f in sorted(glob.glob(f"{jobdir}/result-*.json"))]
start = parts[0]["gang"]["start_unix"]
task_rss = max(p["client"]["peak_rss_mb"] for p in parts)
print(f"run {run}: {n} nodes, {len(parts)} tasks; submit -> common start {start - t0:.2f} s; "
      f"start spread {o['start_spread_s'] * 1000:.2f} ms; offset bound {o['clock_offset_bound_s'] * 1000:.3f} ms; "
      f"merge {merge_ms} ms; slurmd RSS {rss} MiB/node; client task peak RSS {task_rss:.1f} MiB; "
      f"{b['total_requests']} requests, share {o['share']:.3f}")
PY
done
