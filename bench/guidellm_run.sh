#!/usr/bin/env bash
# guidellm 0.8 at fixed concurrency with N synthetic requests against an
# OpenAI-compatible /v1/completions server (used by stream_vs_python.sh).
#   bench/guidellm_run.sh GUIDELLM URL MODEL TOKENIZER N CONC IN OUT OUT_JSON
set -euo pipefail
GUIDELLM=$1 URL=$2 MODEL=$3 TOK=$4 N=$5 CONC=$6 IN=$7 OUT=$8 JSON=$9
exec "$GUIDELLM" run \
  --backend "kind=openai_http,target=$URL,model=$MODEL,request_format=/v1/completions" \
  --profile "kind=concurrent,streams=$CONC" \
  --constraint "kind=max_requests,count=$N" \
  --data "kind=synthetic_text,prompt_tokens=$IN,output_tokens=$OUT" \
  --tokenizer "kind=huggingface_auto,model=$TOK" \
  --output "kind=json,path=$JSON" \
  --disable-console-interactive
