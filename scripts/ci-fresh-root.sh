#!/usr/bin/env bash
# Runs `.ci/run` on a clean checkout inside a fresh Debian root (debootstrap),
# with an empty environment (no SHELL, TERM, USER, LANG), the way CI meets the
# project on a new machine: packages installed from scratch, services started
# from scratch, release build from scratch.
#
#   scripts/ci-fresh-root.sh [DIR]     # default DIR /srv/aibench-fresh; root only
#
# The host's rustup toolchain is bind-mounted in (CI machines have one). The
# host's own SLURM and munge daemons are stopped first (the root shares their
# ports and process table) and the dev cluster is started again at the end.
# The mounts are undone and DIR removed on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "ci-fresh-root: run as root" >&2; exit 1; }
ROOT=${1:-/srv/aibench-fresh}
[ ! -e "$ROOT" ] || { echo "ci-fresh-root: $ROOT exists; remove it or name another folder" >&2; exit 1; }
REPO=$(pwd)
CARGO_DIR=${CARGO_HOME:-$HOME/.cargo}
RUSTUP_DIR=${RUSTUP_HOME:-$HOME/.rustup}

cleanup() {
  set +e
  if [ -d "$ROOT/work/main" ]; then
    chroot "$ROOT" /work/main/scripts/slurm-dev-cluster.sh down >/dev/null 2>&1
  fi
  pkill -x munged; pkill -x prometheus
  # Anything else still running inside the root (a test that leaked a
  # process) would keep its mounts busy.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  sleep 0.5
  for m in proc sys dev run root/.cargo root/.rustup; do
    mountpoint -q "$ROOT/$m" && umount -R "$ROOT/$m"
  done
  if mount | grep -q " $ROOT/"; then
    echo "ci-fresh-root: mounts remain under $ROOT; not removing it" >&2
  else
    rm -rf "$ROOT"
  fi
  "$REPO/scripts/slurm-dev-cluster.sh" up --nodes 3 >/dev/null 2>&1 || echo "ci-fresh-root: the host's dev cluster did not come back up" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v debootstrap >/dev/null || { apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
scripts/slurm-dev-cluster.sh down
pkill -x munged || true

echo "== debootstrap bookworm into $ROOT"
debootstrap --variant=minbase \
  --include=build-essential,procps,python3,git,ca-certificates,hostname,iproute2,pkg-config,curl \
  bookworm "$ROOT" http://deb.debian.org/debian >"$ROOT.debootstrap.log" 2>&1 \
  || { tail -n 20 "$ROOT.debootstrap.log" >&2; exit 1; }
rm -f "$ROOT.debootstrap.log"
cp /etc/hosts /etc/resolv.conf "$ROOT/etc/"
# The machine's trust store and pip settings too, as its resolv.conf: where
# a site's TLS proxy signs with its own CA (this machine's), pip needs it to
# fetch Ray. A CI machine on the open internet has nothing extra here.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
mkdir -p "$ROOT/root/.cargo" "$ROOT/root/.rustup" "$ROOT/work"
mount -t proc proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount -t tmpfs tmpfs "$ROOT/run"
mount --bind "$CARGO_DIR" "$ROOT/root/.cargo"
mount --bind "$RUSTUP_DIR" "$ROOT/root/.rustup"
git clone -q "$REPO" "$ROOT/work/main"

echo "== .ci/run in the fresh root (commit $(git rev-parse --short HEAD); uncommitted changes are not included)"
start=$(date +%s)
set +e
chroot "$ROOT" env -i PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  bash -c "cd /work/main && .ci/run"
rc=$?
set -e
echo "== .ci/run exited $rc after $(( $(date +%s) - start )) s"
exit $rc
