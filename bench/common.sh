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
start_nginx() {
  need nginx "apt-get install -y nginx-light"
  chmod 755 "$WORK"   # nginx workers run as www-data
  printf 'hello from nginx: a small static file for load tests\n' > "$WORK/index.html"
  cat > "$WORK/nginx.conf" <<CONF
daemon off; worker_processes 1; worker_cpu_affinity auto; pid $WORK/nginx.pid; error_log $WORK/nginx-error.log;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:18080 reuseport; root $WORK; } }
CONF
  taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx.conf" -p "$WORK" &
  PIDS+=($!)
  sleep 0.5
  NGINX_URL=http://127.0.0.1:18080/index.html
}

json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {'d': d}))" "$@"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }
machine() { echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"; }
