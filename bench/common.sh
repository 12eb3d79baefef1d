# Shared by the bench/ scripts: a release binary, a server pinned to CPU 0,
# the load generators pinned to CPU 1, so each tool gets the same machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
AIBENCH=${AIBENCH:-target/release/aibench}
[ -x "$AIBENCH" ] || cargo build --release --quiet
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CLIENT="taskset -c $CLIENT_CPU"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "missing '$1': $2" >&2; exit 3; }
}

# start_sim PROFILE [extra args...] -> sets SIM_URL
start_sim() {
  local profile=$1; shift
  taskset -c "$SERVER_CPU" "$AIBENCH" sim --port 0 --profile "$profile" "$@" > "$WORK/sim.out" 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 50); do [ -s "$WORK/sim.out" ] && break; sleep 0.1; done
  SIM_URL=$(head -1 "$WORK/sim.out")
}

# start_nginx -> sets NGINX_URL (a small static file, one worker on SERVER_CPU)
# and NGINX_SSE_URL: the same nginx replaying a vLLM 0.32 streamed
# completion (SSE_CHUNKS content chunks, the usage chunk, `[DONE]`) to any
# method, with /v1/models listing the model `replay`, so an OpenAI client
# and wrk read the same bytes.
start_nginx() {
  need nginx "apt-get install -y nginx-light"
  chmod 755 "$WORK"   # nginx workers run as www-data
  printf 'hello from nginx: a small static file for load tests\n' > "$WORK/index.html"
  mkdir -p "$WORK/v1"
  python3 - "$WORK/v1" "${SSE_CHUNKS:-32}" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
head = {"id": "cmpl-8c86b42c7a1ba211", "object": "text_completion", "created": 1795802000, "model": "replay"}
words = [" the", " cluster", " node", " token", "izer", " batch", " prefix", " cache"]
with open(f"{out}/completions", "w") as f:
    for i in range(n):
        c = dict(head, choices=[{"index": 0, "text": words[i % len(words)], "logprobs": None,
                                 "finish_reason": "length" if i == n - 1 else None, "stop_reason": None,
                                 "prompt_token_ids": None, "token_ids": None}])
        f.write("data: " + json.dumps(c, separators=(",", ":")) + "\n\n")
    u = dict(head, choices=[], usage={"prompt_tokens": 8, "total_tokens": 8 + n, "completion_tokens": n},
             system_fingerprint="vllm-0.32.0-6709a7d1")
    f.write("data: " + json.dumps(u, separators=(",", ":")) + "\n\ndata: [DONE]\n\n")
json.dump({"object": "list", "data": [{"id": "replay", "object": "model", "max_model_len": 4096}]},
          open(f"{out}/models", "w"))
PY
  cat > "$WORK/nginx.conf" <<CONF
daemon off; worker_processes 1; worker_cpu_affinity auto; pid $WORK/nginx.pid; error_log $WORK/nginx-error.log;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:18080 reuseport; root $WORK;
    location = /v1/completions { types { } default_type text/event-stream; error_page 405 =200 \$uri; }
    location = /v1/models { types { } default_type application/json; } } }
CONF
  taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx.conf" -p "$WORK" &
  PIDS+=($!)
  sleep 0.5
  NGINX_URL=http://127.0.0.1:18080/index.html
  NGINX_SSE_URL=http://127.0.0.1:18080/v1/completions
}

json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {'d': d}))" "$@"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }
machine() { echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"; }
