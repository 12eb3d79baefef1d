#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for development and CI.
#
#   scripts/slurm-dev-cluster.sh up       install slurm-wlm, munge, slurmdbd and MariaDB if missing, configure, start
#   scripts/slurm-dev-cluster.sh down     cancel jobs, stop the daemons
#   scripts/slurm-dev-cluster.sh status   sinfo + squeue
#
# Partitions `cpu` (default) and `gpu`; the node is sized from nproc and free
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

write_config() {
  local cpus mem_mb
  cpus=$(( $(nproc) * OVERSUB ))
  mem_mb=$(awk '/MemTotal/{printf "%d", $2/1024 - 512}' /proc/meminfo)
  mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd "$LOG_DIR"
  cat > "$CONF_DIR/slurm.conf" <<CONF
# Written by aibench scripts/slurm-dev-cluster.sh: a single-node dev cluster.
ClusterName=aibench-dev
SlurmctldHost=$HOST(127.0.0.1)
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
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
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
SchedulerParameters=sched_interval=2
NodeName=$HOST NodeAddr=127.0.0.1 NodeHostname=$HOST CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
PartitionName=gpu Nodes=$HOST Default=NO MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  printf 'NodeName=%s Name=gpu File=/dev/null\n' "$HOST" > "$CONF_DIR/gres.conf"
  rm -f "$CONF_DIR/cgroup.conf"
}

running() { pgrep -x "$1" >/dev/null 2>&1; }

up() {
  need_root
  install_packages
  start_munge
  mkdir -p "$LOG_DIR" "$CONF_DIR"
  start_mariadb
  write_config
  start_slurmdbd
  # A controller started before accounting was configured keeps its old
  # storage plugin until it restarts (reconfigure does not change it).
  if running slurmctld && ! scontrol show config 2>/dev/null | grep -q 'AccountingStorageType *= accounting_storage/slurmdbd'; then
    pkill -x slurmctld; pkill -x slurmd
    for _ in $(seq 50); do running slurmctld || running slurmd || break; sleep 0.1; done
  fi
  if ! running slurmctld; then
    slurmctld || { echo "slurm-dev-cluster: slurmctld failed to start:" >&2; tail -n 5 "$LOG_DIR/slurmctld.log" >&2; exit 1; }
  else
    scontrol reconfigure >/dev/null 2>&1 || true
  fi
  if ! running slurmd; then
    slurmd || { echo "slurm-dev-cluster: slurmd failed to start:" >&2; tail -n 5 "$LOG_DIR/slurmd.log" >&2; exit 1; }
  fi
  for _ in $(seq 100); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1 || true)
    case "$state" in
      idle*|mixed*|allocated*) break ;;
      down*|drain*|fail*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle*|mixed*|allocated*) echo "slurm-dev-cluster: up ($HOST: $state; partitions $(sinfo -h -o %P | tr '\n' ' '))" ;;
    *) echo "slurm-dev-cluster: node $HOST is '$state'; see $LOG_DIR/" >&2; tail -n 5 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true; exit 1 ;;
  esac
}

down() {
  need_root
  scancel --user=root >/dev/null 2>&1 || true
  sleep 1
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x slurmdbd 2>/dev/null || true
  for _ in $(seq 50); do running slurmd || running slurmctld || running slurmdbd || break; sleep 0.1; done
  mysqladmin shutdown >/dev/null 2>&1 || true
  echo "slurm-dev-cluster: down"
}

status() {
  if ! command -v sinfo >/dev/null || ! sinfo >/dev/null 2>&1; then
    echo "slurm-dev-cluster: not running"
    exit 1
  fi
  sinfo
  squeue
  sacctmgr -n list cluster format=cluster,controlhost 2>/dev/null || echo "accounting: slurmdbd not answering"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
