#!/usr/bin/env bash
# The same workloads with two builds of aibench, alternating, three runs of
# each: plain HTTP against nginx (req/s; wrk in the same round as the
# anchor), streaming against the instant simulator (output tokens/s), the
# open loop at 5,000 req/s (p99 send lag), 200,000 requests (peak RSS). For a
# refactoring that must not make any figure worse: ratios new / old.
#   bench/against_build.sh OLD_AIBENCH [NEW_AIBENCH=target/release/aibench] [DUR=5]
source "$(dirname "$0")/common.sh"
OLD=${1:?usage: bench/against_build.sh OLD_AIBENCH [NEW_AIBENCH]}
NEW=${2:-target/release/aibench}
DUR=${DUR:-5}
need wrk "apt-get install -y wrk"
start_nginx
start_sim instant
echo "machine: $(machine)"
echo "old: $OLD ($("$OLD" --version 2>/dev/null || echo ?)), new: $NEW"
row() { echo "$1 $2 $3 $4" >> "$WORK/rows.txt"; }
for i in 1 2 3; do
  W=$($CLIENT wrk -t1 -c64 -d"${DUR}s" "$NGINX_URL" | awk '/Requests\/sec/{print $2}')
  row wrk http_rps "$i" "$W"
  for b in old new; do
    bin=$OLD; [ "$b" = new ] && bin=$NEW
    $CLIENT "$bin" bench --url "$NGINX_URL" --api http --users 64 --duration "$DUR" --json "$WORK/h.json" > /dev/null
    row "$b" http_rps "$i" "$(json_get "$WORK/h.json" "d['throughput_req_per_sec']")"
    $CLIENT "$bin" bench --url "$SIM_URL" --users 64 --duration "$DUR" --prompt-tokens 16 --output-tokens 128 --json "$WORK/s.json" > /dev/null
    row "$b" stream_tok_s "$i" "$(json_get "$WORK/s.json" "d['tokens']['output_per_s']")"
    $CLIENT "$bin" bench --url "$SIM_URL" --rate 5000 --duration "$DUR" --prompt-tokens 8 --output-tokens 8 --json "$WORK/o.json" > /dev/null
    row "$b" open_lag_p99_ms "$i" "$(json_get "$WORK/o.json" "d['send_lag_ms']['p99']")"
    /usr/bin/time -f "%M" -o "$WORK/rss.txt" $CLIENT "$bin" bench --url "$SIM_URL" --users 64 --requests 200000 \
      --prompt-tokens 8 --output-tokens 4 --json "$WORK/m.json" > /dev/null
    row "$b" rss_mib_200k "$i" "$(awk '{printf "%.1f", $1/1024}' "$WORK/rss.txt")"
  done
done
python3 - "$WORK/rows.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def vals(b, m):
    return [float(r[3]) for r in rows if r[0] == b and r[1] == m]
print(f"\n{'metric':<18} {'old min/median/max':>28} {'new min/median/max':>28} {'new/old':>8}")
for m, better in [("http_rps", "higher"), ("stream_tok_s", "higher"), ("open_lag_p99_ms", "lower"), ("rss_mib_200k", "lower")]:
    o, n = vals("old", m), vals("new", m)
    f = lambda xs: f"{min(xs):.3g} / {statistics.median(xs):.4g} / {max(xs):.3g}"
    r = statistics.median(n) / statistics.median(o)
    print(f"{m:<18} {f(o):>28} {f(n):>28} {r:>8.3f}  ({better} is better)")
w = vals("wrk", "http_rps")
print(f"wrk http_rps (anchor, same rounds): {min(w):.0f} / {statistics.median(w):.0f} / {max(w):.0f}; new / wrk {statistics.median(vals('new','http_rps'))/statistics.median(w):.3f}")
PY
