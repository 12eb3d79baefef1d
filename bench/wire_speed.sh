#!/usr/bin/env bash
# Wire speed (issue 15): the four goals, ROUNDS rounds, one ratio line per
# goal with min / median / max over the rounds. Servers on CPU 0, each
# client alone on CPU 1, every ratio against a peer measured in the same round.
#   1. streaming: aibench `--api openai-completions` vs wrk (a POST script)
#      reading the same bytes: nginx replaying a vLLM SSE body (SSE_CHUNKS
#      content chunks + usage + [DONE]); also `--api http` on that URL, and
#      each client's CPU per 1,000 streamed tokens (wrk: per 1,000 tokens'
#      worth of the same bytes).
#   2. plain HTTP: aibench `--api http` vs wrk on nginx's static file.
#   3. pacer: first the machine's own sleep overshoot for the open loop's
#      mean interval (examples/sleep_floor.rs, same CPU, same 1 us timer
#      slack), then the open loop at RATE req/s against `sim --profile
#      instant`: send lag p99 and p99.9 as multiples of that floor, and the
#      client's CPU.
#   4. simulator capacity: `sim --profile instant` alone on CPU 0 driven by
#      wrk (streamed completions of SSE_CHUNKS tokens, counted by the
#      simulator's own vllm:generation_tokens_total) over the client's
#      streaming rate in goal 1 (tokens/s); beside it, the simulator over
#      nginx replaying the same body to the same wrk (the ceiling of a
#      server on that core).
#   bench/wire_speed.sh [ROUNDS=3] [DUR=8] [CONNS=64] [RATE=5000] [SSE_CHUNKS=32]
source "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-8}
CONNS=${CONNS:-64}
RATE=${RATE:-5000}
SSE_CHUNKS=${SSE_CHUNKS:-32}
need wrk "apt-get install -y wrk"
FLOOR_BIN=target/release/examples/sleep_floor
[ -x "$FLOOR_BIN" ] || cargo build --release --quiet -p aibench-core --example sleep_floor
start_nginx
start_sim instant
echo "machine: $(machine)"
echo "aibench: $AIBENCH ($("$AIBENCH" --version)); $ROUNDS rounds of ${DUR}s, $CONNS connections, open loop at $RATE req/s"

BODY='{"model": "replay", "prompt": "hello world this is a prompt", "max_tokens": '$SSE_CHUNKS', "ignore_eos": true, "stream": true}'
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
LUA
sed "s/\"replay\"/\"sim-instant\"/" "$WORK/post.lua" > "$WORK/post-sim.lua"
ROWS=$WORK/rows.txt
row() { echo "$1 $2" >> "$ROWS"; }
cpu() { awk '{print $1 + $2}' "$1"; }
timed() { local out=$1; shift; /usr/bin/time -f "%U %S" -o "$out" "$@"; }
wrk_rps() { awk '/Requests\/sec/{print $2}' "$1"; }
sim_tokens() { curl -s "$SIM_URL/metrics" | awk '/^vllm:generation_tokens_total/{print $2}'; }
aibench_ok() { # FILE: the run answered every request, or the figures mean nothing
  json_get "$1" "'ok' if d['errors'] == 0 and d['successes'] > 0 else 'errors: ' + str(d['errors'])" | grep -qx ok \
    || { echo "aibench run in $1 had errors:" >&2; json_get "$1" "d['errors_by_class']" >&2; exit 1; }
}

for i in $(seq "$ROUNDS"); do
  echo "round $i" >&2
  # 1. streaming on the same bytes.
  timed "$WORK/w.cpu" $CLIENT wrk -t1 -c"$CONNS" -d"${DUR}s" -s "$WORK/post.lua" "$NGINX_SSE_URL" > "$WORK/w.txt"
  W=$(wrk_rps "$WORK/w.txt")
  row stream_wrk_rps "$W"
  row stream_wrk_cpu_us_per_1k_tok "$(python3 -c "import sys; print(float(sys.argv[1]) / (float(sys.argv[2]) * $DUR * $SSE_CHUNKS / 1000) * 1e6)" "$(cpu "$WORK/w.cpu")" "$W")"
  timed "$WORK/a.cpu" $CLIENT "$AIBENCH" bench --url "${NGINX_SSE_URL%/v1/completions}" --api openai-completions --model replay \
    --tokenizer words --users "$CONNS" --duration "$DUR" --prompt-tokens 8 --output-tokens "$SSE_CHUNKS" --json "$WORK/a.json" > /dev/null
  aibench_ok "$WORK/a.json"
  A=$(json_get "$WORK/a.json" "d['throughput_req_per_sec']")
  row stream_ai_rps "$A"
  row stream_ratio "$(ratio "$A" "$W")"
  row stream_ai_tok_s "$(json_get "$WORK/a.json" "d['tokens']['output_per_s']")"
  row stream_ai_cpu_us_per_1k_tok "$(python3 -c "import sys; print(float(sys.argv[1]) / (float(sys.argv[2]) * $DUR * $SSE_CHUNKS / 1000) * 1e6)" "$(cpu "$WORK/a.cpu")" "$A")"
  row stream_ai_limited "$(json_get "$WORK/a.json" "1 if (d.get('validity') or {}).get('client_limited') else 0")"
  $CLIENT "$AIBENCH" bench --url "$NGINX_SSE_URL" --api http --users "$CONNS" --duration "$DUR" --json "$WORK/h.json" > /dev/null
  aibench_ok "$WORK/h.json"
  row stream_http_ratio "$(ratio "$(json_get "$WORK/h.json" "d['throughput_req_per_sec']")" "$W")"

  # 2. plain HTTP on the static file.
  $CLIENT wrk -t1 -c"$CONNS" -d"${DUR}s" "$NGINX_URL" > "$WORK/w2.txt"
  W2=$(wrk_rps "$WORK/w2.txt")
  row http_wrk_rps "$W2"
  $CLIENT "$AIBENCH" bench --url "$NGINX_URL" --api http --users "$CONNS" --duration "$DUR" --json "$WORK/h2.json" > /dev/null
  aibench_ok "$WORK/h2.json"
  H2=$(json_get "$WORK/h2.json" "d['throughput_req_per_sec']")
  row http_ai_rps "$H2"
  row http_ratio "$(ratio "$H2" "$W2")"

  # 3. the pacer against the machine's own floor.
  $CLIENT "$FLOOR_BIN" $((1000000 / RATE)) $((RATE * 4)) > "$WORK/floor.json"
  row floor_p99 "$(json_get "$WORK/floor.json" "d['p99']")"
  row floor_p999 "$(json_get "$WORK/floor.json" "d['p999']")"
  $CLIENT "$AIBENCH" bench --url "$SIM_URL" --rate "$RATE" --arrival poisson --duration "$DUR" \
    --prompt-tokens 8 --output-tokens 8 --json "$WORK/o.json" > /dev/null
  aibench_ok "$WORK/o.json"
  row lag_p99 "$(json_get "$WORK/o.json" "d['send_lag_ms']['p99']")"
  row lag_p999 "$(json_get "$WORK/o.json" "d['send_lag_ms']['p999']")"
  row lag_p99_x "$(ratio "$(json_get "$WORK/o.json" "d['send_lag_ms']['p99']")" "$(json_get "$WORK/floor.json" "d['p99']")")"
  row lag_p999_x "$(ratio "$(json_get "$WORK/o.json" "d['send_lag_ms']['p999']")" "$(json_get "$WORK/floor.json" "d['p999']")")"
  row open_sent_rps "$(json_get "$WORK/o.json" "d['rate']['achieved_req_per_sec']")"
  row open_cpu_util "$(json_get "$WORK/o.json" "d['client']['cpu_util'] * 100")"
  row queue_p99 "$(json_get "$WORK/o.json" "d['queue_ms']['p99']")"
  row pacer_fifo "$(json_get "$WORK/o.json" "1 if (d['client'].get('pacer') or {}).get('priority') == 'sched_fifo' else 0")"

  # 4. the simulator's capacity over the client's streaming rate.
  T0=$(sim_tokens)
  $CLIENT wrk -t1 -c"$CONNS" -d"${DUR}s" -s "$WORK/post-sim.lua" "$SIM_URL/v1/completions" > "$WORK/w4.txt"
  T1=$(sim_tokens)
  S=$(python3 -c "import sys; print((float(sys.argv[2]) - float(sys.argv[1])) / $DUR)" "$T0" "$T1")
  row sim_tok_s "$S"
  row sim_ratio "$(ratio "$S" "$(json_get "$WORK/a.json" "d['tokens']['output_per_s']")")"
  # The ceiling of any server on that core: nginx replaying the same body
  # to the same wrk (goal 1's run), in tokens/s.
  row sim_vs_nginx "$(ratio "$S" "$(python3 -c "import sys; print(float(sys.argv[1]) * $SSE_CHUNKS)" "$W")")"
done

python3 - "$ROWS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    rows.setdefault(k, []).append(float(v))
def mmm(k, fmt="{:.3g}"):
    xs = rows[k]
    return " / ".join(fmt.format(x) for x in (min(xs), statistics.median(xs), max(xs)))
print("\nmin / median / max over the rounds")
print(f"streaming req/s: wrk {mmm('stream_wrk_rps', '{:,.0f}')}, aibench {mmm('stream_ai_rps', '{:,.0f}')}")
print(f"client CPU per 1,000 streamed tokens (us): aibench {mmm('stream_ai_cpu_us_per_1k_tok', '{:.0f}')}, wrk {mmm('stream_wrk_cpu_us_per_1k_tok', '{:.0f}')}")
print(f"plain HTTP req/s: wrk {mmm('http_wrk_rps', '{:,.0f}')}, aibench {mmm('http_ai_rps', '{:,.0f}')}")
print(f"timer floor ms: p99 {mmm('floor_p99')}, p99.9 {mmm('floor_p999')}; send lag ms: p99 {mmm('lag_p99')}, p99.9 {mmm('lag_p999')}")
print(f"open loop: sent {mmm('open_sent_rps', '{:,.0f}')} req/s, client CPU {mmm('open_cpu_util', '{:.0f}')} % of its core; "
      f"intended -> on the wire p99 {mmm('queue_p99')} ms; pacer at SCHED_FIFO in {sum(rows['pacer_fifo']):.0f} of {len(rows['pacer_fifo'])} rounds")
print(f"simulator streamed tokens/s {mmm('sim_tok_s', '{:,.0f}')}; client streaming tokens/s {mmm('stream_ai_tok_s', '{:,.0f}')}")
limited = sum(rows['stream_ai_limited'])
print(f"streaming runs flagged client-limited by the validity check: {limited:.0f} of {len(rows['stream_ai_limited'])}")
print()
print(f"goal 1  streaming / wrk (same SSE bytes)       {mmm('stream_ratio')}   (goal >= 0.9; --api http on that URL: {mmm('stream_http_ratio')})")
print(f"goal 2  plain HTTP / wrk (static file)         {mmm('http_ratio')}   (goal >= 1.0)")
print(f"goal 3  send lag / timer floor, p99 ; p99.9    {mmm('lag_p99_x')} ; {mmm('lag_p999_x')}   (goal <= 2)")
print(f"goal 4  simulator / client streaming tokens/s  {mmm('sim_ratio')}   (goal >= 10; simulator / nginx replaying the same body: {mmm('sim_vs_nginx')})")
PY
