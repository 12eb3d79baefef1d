#!/usr/bin/env bash
# Benchmark 1: plain HTTP requests/s of `aibench bench --api http` vs wrk and
# oha, same connections and duration, against nginx serving a small static
# file on loopback. nginx on CPU 0, each client alone on CPU 1.
#   bench/http_vs_wrk.sh [CONNS=64] [DUR=10]
source "$(dirname "$0")/common.sh"
CONNS=${CONNS:-64}
DUR=${DUR:-10}
need wrk "apt-get install -y wrk"
OHA=${OHA:-$(command -v oha || echo /opt/peers/oha/bin/oha)}
[ -x "$OHA" ] || { echo "missing oha: cargo install oha" >&2; exit 3; }
start_nginx
echo "machine: $(machine)"
echo "target: $NGINX_URL, $CONNS connections, ${DUR}s each"

cpu_of() { awk '{print $1 + $2}' "$WORK/$1.cpu"; }
timed() { local out=$1; shift; /usr/bin/time -f "%U %S" -o "$out" "$@"; }
timed "$WORK/wrk.cpu" $CLIENT wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "$NGINX_URL" > "$WORK/wrk.txt"
WRK_RPS=$(awk '/Requests\/sec/{print $2}' "$WORK/wrk.txt")
wrk_p() { awk -v p="$1" '$1==p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$WORK/wrk.txt"; }

timed "$WORK/oha.cpu" $CLIENT "$OHA" -c "$CONNS" -z "${DUR}s" --no-tui --output-format json "$NGINX_URL" > "$WORK/oha.json" 2>/dev/null
OHA_RPS=$(json_get "$WORK/oha.json" "d['summary']['requestsPerSec']")
oha_p() { json_get "$WORK/oha.json" "d['latencyPercentiles']['p$1']*1000"; }

timed "$WORK/aibench.cpu" $CLIENT "$AIBENCH" bench --url "$NGINX_URL" --api http --users "$CONNS" --duration "$DUR" --json "$WORK/aibench.json" > "$WORK/aibench.txt" || { cat "$WORK/aibench.txt"; exit 1; }
AI_RPS=$(json_get "$WORK/aibench.json" "d['throughput_req_per_sec']")
ai_p() { json_get "$WORK/aibench.json" "d['latency_ms']['p$1']"; }

# Client CPU per request: when the server is the limit, the leaner client shows here.
us_per_req() { python3 -c "import sys; print(f'{float(sys.argv[1]) / (float(sys.argv[2]) * float(sys.argv[3])) * 1e6:.2f}')" "$1" "$2" "$DUR"; }
printf '\n%-10s %12s %10s %10s %10s %10s %14s\n' tool "req/s" "p50 ms" "p90 ms" "p99 ms" "vs wrk" "CPU us/req"
printf '%-10s %12.0f %10.3f %10.3f %10.3f %10s %14s\n' wrk "$WRK_RPS" "$(wrk_p 50%)" "$(wrk_p 90%)" "$(wrk_p 99%)" 1.00 "$(us_per_req "$(cpu_of wrk)" "$WRK_RPS")"
printf '%-10s %12.0f %10.3f %10.3f %10.3f %10s %14s\n' oha "$OHA_RPS" "$(oha_p 50)" "$(oha_p 90)" "$(oha_p 99)" "$(ratio "$OHA_RPS" "$WRK_RPS")" "$(us_per_req "$(cpu_of oha)" "$OHA_RPS")"
printf '%-10s %12.0f %10.3f %10.3f %10.3f %10s %14s\n' aibench "$AI_RPS" "$(ai_p 50)" "$(ai_p 90)" "$(ai_p 99)" "$(ratio "$AI_RPS" "$WRK_RPS")" "$(us_per_req "$(cpu_of aibench)" "$AI_RPS")"
echo
echo "aibench / wrk requests/s: $(ratio "$AI_RPS" "$WRK_RPS")  (goal >= 0.9)"
