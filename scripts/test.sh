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
# A virtualenv for Ray (the multi-node server tests).
python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing ${need_pkgs[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}"
  else
    echo "== missing packages (${need_pkgs[*]}); run as root or install them: tests that need them are skipped unless AIBENCH_REQUIRE_SLURM=1" >&2
  fi
fi

# Ray from PyPI, in a virtualenv of its own (.venv-ray, git-ignored): the
# multi-node server tests form a real Ray cluster across the dev nodes.
RAY_VERSION=2.60.0
if [ ! -x .venv-ray/bin/ray ] || ! .venv-ray/bin/ray --version 2>/dev/null | grep -q "$RAY_VERSION"; then
  echo "== installing ray $RAY_VERSION into .venv-ray"
  python3 -m venv .venv-ray && .venv-ray/bin/pip install -q --disable-pip-version-check "ray==$RAY_VERSION" \
    || echo "== ray could not be installed: the Ray test fails under AIBENCH_REQUIRE_SLURM=1" >&2
fi

if [ -x scripts/slurm-dev-cluster.sh ] && [ "$(id -u)" -eq 0 ]; then
  echo "== starting the 3-node SLURM dev cluster"
  scripts/slurm-dev-cluster.sh up --nodes 3
fi

echo "== cargo test --release --workspace --no-fail-fast"
cargo test --release --workspace --no-fail-fast "$@"
