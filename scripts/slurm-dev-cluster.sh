#!/usr/bin/env bash
# A real SLURM cluster on this machine, for development and CI: one node (the
# machine itself) or N nodes, each a network namespace with its own host name,
# address and slurmd.
#
#   scripts/slurm-dev-cluster.sh up [--nodes N]  install slurm-wlm, munge, slurmdbd and MariaDB if missing, configure, start
#   scripts/slurm-dev-cluster.sh down            cancel jobs, stop the daemons, remove namespaces, links and hosts entries
#   scripts/slurm-dev-cluster.sh status          sinfo + squeue
#   scripts/slurm-dev-cluster.sh fail NODE       kill a node's slurmd and every process on it (node-failure tests); `up` brings it back
#
# Without --nodes (or --nodes 0) the one node is this machine, reached on
# 127.0.0.1: the laptop mode. With --nodes N (the tests use 3) the nodes are
# node1..nodeN:
#   - each is a network namespace (held by an `unshare --net sleep`, pid in
#     /run/aibench-dev-cluster/nodeK.pid) with a veth on the bridge
#     aibench0; the host is 10.77.0.1 there and nodeK is 10.77.0.(10+K)
#     (AIBENCH_DEV_NET changes the first three parts). These addresses exist
#     only on that bridge: nothing is routed or forwarded off the machine;
#   - each slurmd runs in its namespace under its own UTS name, started with
#     `nsenter --net=... unshare --uts` (`ip netns exec` remounts /sys, and
#     slurmd then fails on cgroups); SlurmdParameters=config_overrides lets
#     N slurmds share one machine's CPUs;
#   - /etc/hosts gets a marked block naming node1..nodeN (the file system is
#     shared, so every node and the host resolve the same names);
#   - slurmctld and slurmdbd run on the host; the file system, munge socket
#     and binaries are shared, as on a cluster.
#
# Partitions `cpu` (default) and `gpu`; nodes are sized from nproc and free
# memory. Each real CPU is offered OVERSUB (default 8) times so the several
# small jobs of a test (servers, clients, Prometheus) can share one node.
# The node advertises one GPU whose "device" is /dev/null, so recipes asking
# for gpu_count 1 are accepted by the scheduler (they cannot use a GPU here). Runs as root: SlurmUser and SlurmdUser are root.
# Accounting is real: slurmdbd stores jobs in MariaDB (database slurm_acct_db),
# jobacct_gather/linux samples the jobs' processes, so `sacct` answers with
# Elapsed, AllocTRES (gres/gpu included), TotalCPU and MaxRSS.
set -euo pipefail

CONF_DIR=${SLURM_CONF_DIR:-/etc/slurm}
OVERSUB=${OVERSUB:-8}
LOG_DIR=/var/log/slurm
HOST=$(hostname -s)
NET=${AIBENCH_DEV_NET:-10.77.0}
BRIDGE=aibench0
LAYOUT_FILE=/var/spool/slurmctld/aibench-dev-layout
STATE_DIR=/run/aibench-dev-cluster
HOSTS_BEGIN="# aibench dev cluster: begin"
HOSTS_END="# aibench dev cluster: end"
NODES=0

need_root() {
  [ "$(id -u)" -eq 0 ] || { echo "slurm-dev-cluster: run as root (it installs packages and starts daemons)" >&2; exit 1; }
}

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurm-wlm)
  command -v munged >/dev/null || [ -x /usr/sbin/munged ] || missing+=(munge)
  command -v slurmdbd >/dev/null || [ -x /usr/sbin/slurmdbd ] || missing+=(slurmdbd)
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "slurm-dev-cluster: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

start_munge() {
  mkdir -p /etc/munge /var/run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --force >/dev/null; else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; fi
  fi
  chown -R munge:munge /etc/munge /var/run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    pkill -x munged 2>/dev/null || true
    if id munge >/dev/null 2>&1; then
      su -s /bin/sh munge -c "/usr/sbin/munged" 2>/dev/null || /usr/sbin/munged --force
    else
      /usr/sbin/munged --force
    fi
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  munge -n | unmunge >/dev/null || { echo "slurm-dev-cluster: munge does not work" >&2; exit 1; }
}

DB_PASS=aibench-dev

start_mariadb() {
  if ! mysqladmin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    if [ ! -d /var/lib/mysql/mysql ]; then
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    (/usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
      --bind-address=127.0.0.1 --innodb-lock-wait-timeout=900 >> "$LOG_DIR/mariadb.log" 2>&1 &)
    for _ in $(seq 100); do mysqladmin ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  mysqladmin ping >/dev/null 2>&1 || { echo "slurm-dev-cluster: MariaDB did not start; see $LOG_DIR/mariadb.log" >&2; exit 1; }
  mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

start_slurmdbd() {
  cat > "$CONF_DIR/slurmdbd.conf" <<CONF
# Written by aibench scripts/slurm-dev-cluster.sh: accounting in MariaDB.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=$LOG_DIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
CONF
  chmod 600 "$CONF_DIR/slurmdbd.conf"
  if ! running slurmdbd; then
    slurmdbd || { echo "slurm-dev-cluster: slurmdbd failed to start:" >&2; tail -n 5 "$LOG_DIR/slurmdbd.log" >&2; exit 1; }
  fi
  for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
  sacctmgr -n list cluster >/dev/null 2>&1 || { echo "slurm-dev-cluster: slurmdbd does not answer; see $LOG_DIR/slurmdbd.log" >&2; exit 1; }
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx aibench-dev; then
    sacctmgr -i add cluster aibench-dev >/dev/null
  fi
}

# The controller's and nodes' lines of slurm.conf for the chosen layout.
node_lines() {
  local cpus=$1 mem_mb=$2 i
  if [ "$NODES" -eq 0 ]; then
    echo "SlurmctldHost=$HOST(127.0.0.1)"
    echo "SlurmdSpoolDir=/var/spool/slurmd"
    echo "SlurmdPidFile=/run/slurmd.pid"
    echo "SlurmdLogFile=$LOG_DIR/slurmd.log"
    echo "NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$HOST CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN"
    echo "PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
    echo "PartitionName=gpu Nodes=$HOST Default=NO MaxTime=INFINITE State=UP OverSubscribe=YES"
  else
    echo "SlurmctldHost=$HOST($NET.1)"
    echo "SlurmdSpoolDir=/var/spool/slurmd/%n"
    echo "SlurmdPidFile=/run/slurmd-%n.pid"
    echo "SlurmdLogFile=$LOG_DIR/slurmd-%n.log"
    for i in $(seq "$NODES"); do
      echo "NodeName=node$i NodeAddr=$(node_addr "$i") NodeHostname=node$i CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN"
    done
    echo "PartitionName=cpu Nodes=node[1-$NODES] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
    echo "PartitionName=gpu Nodes=node[1-$NODES] Default=NO MaxTime=INFINITE State=UP OverSubscribe=YES"
  fi
}

node_addr() { echo "$NET.$((10 + $1))"; }

# The names slurmd answers to: this machine, or node1..nodeN.
node_names() {
  if [ "$NODES" -eq 0 ]; then echo "$HOST"; else seq -f "node%g" "$NODES"; fi
}

write_config() {
  local cpus mem_mb name
  cpus=$(( $(nproc) * OVERSUB ))
  # Every node advertises the machine's memory: they share it, as they share
  # its CPUs (config_overrides), and test jobs are small.
  mem_mb=$(awk '/MemTotal/{printf "%d", $2/1024 - 512}' /proc/meminfo)
  mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd "$LOG_DIR"
  {
    cat <<CONF
# Written by aibench scripts/slurm-dev-cluster.sh: a dev cluster ($([ "$NODES" -eq 0 ] && echo "one node, this machine" || echo "$NODES namespace nodes")).
ClusterName=aibench-dev
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
GresTypes=gpu
StateSaveLocation=/var/spool/slurmctld
SlurmctldPidFile=/run/slurmctld.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
MinJobAge=600
KillWait=30
InactiveLimit=0
Waittime=0
SlurmdTimeout=30
SchedulerParameters=sched_interval=2
CONF
    node_lines "$cpus" "$mem_mb"
  } > "$CONF_DIR/slurm.conf"
  : > "$CONF_DIR/gres.conf"
  for name in $(node_names); do
    printf 'NodeName=%s Name=gpu File=/dev/null\n' "$name" >> "$CONF_DIR/gres.conf"
  done
  rm -f "$CONF_DIR/cgroup.conf"
}

# The bridge, one namespace per node with a veth on it, and /etc/hosts names.
# A node's namespace is held by a small process (`unshare --net sleep`),
# whose pid is kept in $STATE_DIR/nodeK.pid and whose /proc/PID/ns/net names
# it: `ip netns add` would need a shared mount of /run/netns, which a chroot
# or a container's root does not allow. Idempotent: what exists is kept.
make_network() {
  local i ns
  mkdir -p "$STATE_DIR"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for i in $(seq "$NODES"); do
    if ! node_ns "$i" >/dev/null; then
      setsid unshare --net sleep infinity </dev/null >/dev/null 2>&1 &
      echo $! > "$STATE_DIR/node$i.pid"
      for _ in $(seq 50); do node_ns "$i" >/dev/null && break; sleep 0.05; done
    fi
    ns=$(node_ns "$i") || { echo "slurm-dev-cluster: the namespace of node$i did not start" >&2; exit 1; }
    if ! ip link show "aibv$i" >/dev/null 2>&1; then
      ip link add "aibv$i" type veth peer name eth0 netns "$(cat "$STATE_DIR/node$i.pid")"
      ip link set "aibv$i" master "$BRIDGE"
    fi
    ip link set "aibv$i" up
    nsenter --net="$ns" ip addr replace "$(node_addr "$i")/24" dev eth0
    nsenter --net="$ns" ip link set eth0 up
    nsenter --net="$ns" ip link set lo up
  done
  write_hosts
}

# The namespace file of node K (/proc/PID/ns/net of its holder), if it lives.
node_ns() {
  local pid
  pid=$(cat "$STATE_DIR/node$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] || return 1
  [ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] || return 1
  echo "/proc/$pid/ns/net"
}

# Replaces the marked block of /etc/hosts (in place: it may be a bind mount).
write_hosts() {
  local body i
  body=$(sed "/^$HOSTS_BEGIN\$/,/^$HOSTS_END\$/d" /etc/hosts)
  {
    printf '%s\n' "$body"
    if [ "$NODES" -gt 0 ]; then
      echo "$HOSTS_BEGIN"
      for i in $(seq "$NODES"); do echo "$(node_addr "$i") node$i"; done
      echo "$HOSTS_END"
    fi
  } > /etc/hosts.aibench-new
  cat /etc/hosts.aibench-new > /etc/hosts
  rm -f /etc/hosts.aibench-new
}

remove_network() {
  local f pid ns p
  for f in "$STATE_DIR"/node*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ]; then
      ns=$(readlink "/proc/$pid/ns/net")
      # Everything still in the node's namespace (its slurmd, job leftovers).
      for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ]; then kill -9 "${p#/proc/}" 2>/dev/null || true; fi
      done
    fi
    rm -f "$f"
  done
  # A veth goes with its namespace; any left (a namespace held elsewhere) go now.
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^aibv[0-9]+$' || true); do
    ip link del "$l" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  NODES=0 write_hosts
}

slurmd_running() {
  if [ "$NODES" -eq 0 ]; then pgrep -x slurmd >/dev/null 2>&1; else pgrep -f "^slurmd -N $1\$" >/dev/null 2>&1; fi
}

start_slurmds() {
  local i name
  if [ "$NODES" -eq 0 ]; then
    if ! running slurmd; then
      slurmd || { echo "slurm-dev-cluster: slurmd failed to start:" >&2; tail -n 5 "$LOG_DIR/slurmd.log" >&2; exit 1; }
    fi
    return
  fi
  for i in $(seq "$NODES"); do
    name=node$i
    mkdir -p "/var/spool/slurmd/$name"
    slurmd_running "$name" && continue
    nsenter --net="$(node_ns "$i")" unshare --uts sh -c "hostname $name && exec slurmd -N $name" \
      || { echo "slurm-dev-cluster: slurmd for $name failed to start:" >&2; tail -n 5 "$LOG_DIR/slurmd-$name.log" >&2; exit 1; }
  done
}

running() { pgrep -x "$1" >/dev/null 2>&1; }

# Waits for every node to be usable (resuming one SLURM left down).
wait_nodes() {
  local name state ok
  for _ in $(seq 150); do
    ok=1
    for name in $(node_names); do
      state=$(sinfo -h -n "$name" -o %T 2>/dev/null | head -1 || true)
      case "$state" in
        idle*|mixed*|allocated*) ;;
        down*|drain*|fail*) ok=0; scontrol update nodename="$name" state=resume >/dev/null 2>&1 || true ;;
        *) ok=0 ;;
      esac
    done
    [ "$ok" -eq 1 ] && return 0
    sleep 0.2
  done
  echo "slurm-dev-cluster: not every node came up:" >&2
  sinfo -N >&2 || true
  tail -n 5 "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd*.log >&2 || true
  exit 1
}

stop_slurm_daemons() {
  pkill -x slurmctld 2>/dev/null || true
  pkill -x slurmd 2>/dev/null || true
  for _ in $(seq 100); do running slurmctld || running slurmd || break; sleep 0.1; done
}

up() {
  need_root
  install_packages
  start_munge
  mkdir -p "$LOG_DIR" "$CONF_DIR"
  start_mariadb
  local layout="nodes=$NODES net=$NET host=$HOST" clear_state=
  write_config
  start_slurmdbd
  # A controller started before accounting was configured keeps its old
  # storage plugin until it restarts (reconfigure does not change it); a
  # different layout (nodes, addresses) needs a restart too, and its saved
  # jobs refer to nodes that no longer exist, so they are cleared.
  if [ "$(cat "$LAYOUT_FILE" 2>/dev/null)" != "$layout" ]; then
    stop_slurm_daemons
    remove_network
    clear_state=-c
  elif running slurmctld && ! scontrol show config 2>/dev/null | grep -q 'AccountingStorageType *= accounting_storage/slurmdbd'; then
    stop_slurm_daemons
  fi
  [ "$NODES" -gt 0 ] && make_network
  if ! running slurmctld; then
    slurmctld $clear_state || { echo "slurm-dev-cluster: slurmctld failed to start:" >&2; tail -n 5 "$LOG_DIR/slurmctld.log" >&2; exit 1; }
  else
    scontrol reconfigure >/dev/null 2>&1 || true
  fi
  echo "$layout" > "$LAYOUT_FILE"
  start_slurmds
  wait_nodes
  if [ "$NODES" -eq 0 ]; then
    echo "slurm-dev-cluster: up ($HOST; partitions $(sinfo -h -o %P | tr '\n' ' '))"
  else
    echo "slurm-dev-cluster: up ($NODES nodes: $(for i in $(seq "$NODES"); do printf 'node%s=%s ' "$i" "$(node_addr "$i")"; done)on bridge $BRIDGE; partitions $(sinfo -h -o %P | tr '\n' ' '))"
  fi
}

down() {
  need_root
  scancel --user=root >/dev/null 2>&1 || true
  sleep 1
  stop_slurm_daemons
  pkill -x slurmdbd 2>/dev/null || true
  for _ in $(seq 50); do running slurmdbd || break; sleep 0.1; done
  remove_network
  rm -f "$LAYOUT_FILE"
  mysqladmin shutdown >/dev/null 2>&1 || true
  echo "slurm-dev-cluster: down"
}

status() {
  if ! command -v sinfo >/dev/null || ! sinfo >/dev/null 2>&1; then
    echo "slurm-dev-cluster: not running"
    exit 1
  fi
  echo "layout: $(cat "$LAYOUT_FILE" 2>/dev/null || echo unknown)"
  sinfo -N -o "%N %T %o %P"
  squeue
  sacctmgr -n list cluster format=cluster,controlhost 2>/dev/null || echo "accounting: slurmdbd not answering"
}

usage() { echo "usage: $0 up [--nodes N] | down | status | fail NODE" >&2; exit 2; }

# Takes a node away as if it died (tests of node failure): everything in its
# namespace (its slurmd, job steps and their processes) is killed at once.
# Its namespace and link stay; `up` starts its slurmd again, and SLURM
# returns the node to service (ReturnToService=2).
fail_node() {
  local name=$1 holder ns p
  case "$name" in
    node[0-9]*) ;;
    *) echo "slurm-dev-cluster: fail: expected a node name such as node3, got '$name'" >&2; exit 2 ;;
  esac
  holder=$(cat "$STATE_DIR/$name.pid" 2>/dev/null || true)
  if [ -z "$holder" ] || [ "$(cat "/proc/$holder/comm" 2>/dev/null)" != sleep ]; then
    echo "slurm-dev-cluster: fail: no node '$name' (is the cluster up with enough --nodes?)" >&2
    exit 1
  fi
  ns=$(readlink "/proc/$holder/ns/net")
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$holder" ] && continue
    if [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ]; then kill -9 "${p#/proc/}" 2>/dev/null || true; fi
  done
  echo "slurm-dev-cluster: $name failed (its slurmd and every process on it killed)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
target=
if [ "$cmd" = fail ]; then
  [ $# -ge 1 ] || usage
  target=$1
  shift
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) [ $# -ge 2 ] || usage; NODES=$2; shift 2 ;;
    --nodes=*) NODES=${1#--nodes=}; shift ;;
    *) echo "slurm-dev-cluster: unknown argument '$1'" >&2; usage ;;
  esac
done
case "$NODES" in
  ''|*[!0-9]*) echo "slurm-dev-cluster: --nodes: expected a whole number 0..200, got '$NODES'" >&2; exit 2 ;;
esac
[ "$NODES" -le 200 ] || { echo "slurm-dev-cluster: --nodes: expected a whole number 0..200, got '$NODES'" >&2; exit 2; }

case "$cmd" in
  up) up ;;
  down) down ;;
  status) status ;;
  fail) fail_node "$target" ;;
  *) usage ;;
esac
