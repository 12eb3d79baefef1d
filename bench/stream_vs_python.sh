#!/usr/bin/env bash
# Benchmark 2: streaming LLM requests against `aibench sim --profile instant`
# (CPU 0): aibench vs vLLM's own client (`vllm bench serve`) and guidellm,
# each alone on CPU 1, same request count, concurrency, prompt and output
# lengths. Prints requests/s and tokens/s ratios and the TTFT/ITL each saw.
# Peers: see ../shared/peers/README.md (venvs under $PEERS, default /opt/peers;
# tokenizer from bench/make_tokenizer.py).
#   bench/stream_vs_python.sh [N=5000] [CONC=8] [IN=128] [OUT=128]
source "$(dirname "$0")/common.sh"
N=${N:-5000}
CONC=${CONC:-8}
IN=${IN:-128}
OUT=${OUT:-128}
PEERS=${PEERS:-/opt/peers}
VLLM=$PEERS/vllm/bin/vllm
GUIDELLM=$PEERS/guidellm/bin/guidellm
TOK=$PEERS/tok
[ -x "$VLLM" ] || { echo "missing vLLM client at $VLLM (see shared/peers/README.md)" >&2; exit 3; }
[ -x "$GUIDELLM" ] || { echo "missing guidellm at $GUIDELLM" >&2; exit 3; }
[ -d "$TOK" ] || "$PEERS/vllm/bin/python" bench/make_tokenizer.py "$TOK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
start_sim instant
MODEL=sim-instant
tokens() { curl -s "$SIM_URL/metrics" | awk '/^vllm:generation_tokens_total/{print $2}'; }
echo "machine: $(machine)"
echo "target: $SIM_URL, $N requests, concurrency $CONC, $IN prompt / $OUT output tokens"

# aibench
T0=$(tokens)
$CLIENT "$AIBENCH" bench --url "$SIM_URL" --users "$CONC" --requests "$N" --prompt-tokens "$IN" --output-tokens "$OUT" \
  --json "$WORK/aibench.json" > /dev/null
T1=$(tokens)
read -r AI_RPS AI_TPS AI_TTFT AI_ITL AI_N < <(json_get "$WORK/aibench.json" \
  "f\"{d['throughput_req_per_sec']} {d['tokens']['output_per_s']} {d['ttft_ms']['mean']} {d['itl_ms']['mean']} {d['successes']}\"")
echo "aibench: server streamed $((${T1%.*} - ${T0%.*})) tokens"

# vLLM's benchmark client
T0=$(tokens)
$CLIENT "$VLLM" bench serve --backend vllm --base-url "$SIM_URL" --model "$MODEL" --tokenizer "$TOK" \
  --dataset-name random --random-input-len "$IN" --random-output-len "$OUT" --num-prompts "$N" \
  --max-concurrency "$CONC" --ignore-eos --disable-tqdm --save-result --result-dir "$WORK" --result-filename vllm.json \
  > "$WORK/vllm.log" 2>&1
T1=$(tokens)
read -r V_RPS V_TPS V_TTFT V_ITL V_N < <(json_get "$WORK/vllm.json" \
  "f\"{d['request_throughput']} {d['output_throughput']} {d['mean_ttft_ms']} {d['mean_itl_ms']} {d['completed']}\"")
echo "vllm bench serve: server streamed $((${T1%.*} - ${T0%.*})) tokens"

# guidellm
GUIDE_CMD=(bench/guidellm_run.sh "$GUIDELLM" "$SIM_URL" "$MODEL" "$TOK" "$N" "$CONC" "$IN" "$OUT" "$WORK/guidellm.json")
T0=$(tokens)
$CLIENT "${GUIDE_CMD[@]}" > "$WORK/guidellm.log" 2>&1
T1=$(tokens)
read -r G_RPS G_TPS G_TTFT G_ITL G_N < <("$PEERS/guidellm/bin/python" bench/guidellm_extract.py "$WORK/guidellm.json")
echo "guidellm: server streamed $((${T1%.*} - ${T0%.*})) tokens"

printf '\n%-18s %10s %12s %12s %10s %10s %10s\n' tool "ok" "req/s" "out tok/s" "TTFT ms" "ITL ms" "aibench x"
printf '%-18s %10d %12.1f %12.0f %10.3f %10.4f %10s\n' aibench "$AI_N" "$AI_RPS" "$AI_TPS" "$AI_TTFT" "$AI_ITL" "1.0"
printf '%-18s %10d %12.1f %12.0f %10.3f %10.4f %10s\n' "vllm bench serve" "$V_N" "$V_RPS" "$V_TPS" "$V_TTFT" "$V_ITL" "$(ratio "$AI_RPS" "$V_RPS")"
printf '%-18s %10d %12.1f %12.0f %10.3f %10.4f %10s\n' guidellm "$G_N" "$G_RPS" "$G_TPS" "$G_TTFT" "$G_ITL" "$(ratio "$AI_RPS" "$G_RPS")"
echo
echo "aibench / vllm bench serve: req/s $(ratio "$AI_RPS" "$V_RPS"), tok/s $(ratio "$AI_TPS" "$V_TPS")   (goal >= 10)"
echo "aibench / guidellm:         req/s $(ratio "$AI_RPS" "$G_RPS"), tok/s $(ratio "$AI_TPS" "$G_TPS")   (goal >= 10)"
