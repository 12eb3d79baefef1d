#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need
# on a fresh Debian machine, starts the services they use, runs every test.
#
#   scripts/test.sh            # everything
#   scripts/test.sh lua proc   # extra arguments go to `cargo test` (a filter)
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v sbatch >/dev/null     || need_pkgs+=(slurm-wlm)
command -v munged >/dev/null || [ -x /usr/sbin/munged ] || need_pkgs+=(munge)
command -v prometheus >/dev/null || need_pkgs+=(prometheus)
command -v chromium >/dev/null   || need_pkgs+=(chromium)
command -v tmux >/dev/null       || need_pkgs+=(tmux)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing ${need_pkgs[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}"
  else
    echo "== missing packages (${need_pkgs[*]}); run as root or install them: tests that need them are skipped unless AIBENCH_REQUIRE_SLURM=1" >&2
  fi
fi

if [ -x scripts/slurm-dev-cluster.sh ] && [ "$(id -u)" -eq 0 ]; then
  echo "== starting the 3-node SLURM dev cluster"
  scripts/slurm-dev-cluster.sh up --nodes 3
fi

echo "== cargo test --release --workspace --no-fail-fast"
cargo test --release --workspace --no-fail-fast "$@"
