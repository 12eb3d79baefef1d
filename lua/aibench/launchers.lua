--- Servers that span nodes (`service.nodes: N`): what each node's part
--- runs, by `service.launcher`. The batch job starts one `srun` step of one
--- job agent per node; the agents meet in the job's folder (the head says
--- where it is first) and fill `{node_rank}`, `{nnodes}`, `{node_addr}`,
--- `{head_host}`, `{head_addr}` and `{head_port}` into the script below on
--- each node.
---
--- - `per-node`: `service.command` runs on every node (SGLang's
---   `--nnodes/--node-rank/--dist-init-addr`, vLLM's own multi-node flags).
--- - `ray`: the head starts a Ray head, the others join it; once Ray reports
---   every node (and their GPUs) the head runs `service.command` (vLLM's
---   `--distributed-executor-backend ray`). Ray stays in the foreground
---   (`--block`), so a node whose Ray ends ends its part, and the whole
---   deployment with it.
local fs = require("aibench.fs")
local util = require("aibench.util")

local M = {}

--- Checks a server recipe's multi-node fields; raises one line naming the
--- recipe file and field. Returns the node count.
function M.check(r, file, executor)
  local s = r.service
  local n = s.nodes or 1
  if n <= 1 then
    if s.launcher and s.launcher ~= "per-node" then
      -- A launcher on one node is harmless, but Ray on one node is surely a mistake.
      error(string.format("%s: service.launcher: '%s' needs service.nodes of 2 or more, got %d", file, s.launcher, n), 0)
    end
    return 1
  end
  if not s.launcher then
    error(string.format("%s: service.launcher: a server on %d nodes needs a launcher: ray (the head starts a Ray cluster) or per-node (the command runs on every node)", file, n), 0)
  end
  if executor ~= "slurm" then
    error(string.format("%s: service.nodes: a server on %d nodes runs as one SLURM job of one task per node; the %s executor runs one process (use --executor slurm)", file, n, executor), 0)
  end
  if s.ray and s.launcher ~= "ray" then
    error(string.format("%s: service.ray: Ray's settings need launcher: ray, got launcher: %s", file, s.launcher), 0)
  end
  local health_s = s.health and s.health.timeout_s
  if s.ray and s.ray.timeout_s and health_s and s.ray.timeout_s >= health_s then
    error(string.format("%s: service.ray.timeout_s: %g s is not less than service.health.timeout_s (%g s): the health probe would give up before Ray could name the nodes it lacks", file, s.ray.timeout_s, health_s), 0)
  end
  local res = (r.orchestration and r.orchestration.resources) or {}
  if res.nodes and res.nodes ~= n then
    error(string.format("%s: orchestration.resources.nodes: %d, but service.nodes is %d (leave resources.nodes out: it follows service.nodes)", file, res.nodes, n), 0)
  end
  return n
end

local function words(list)
  local out = {}
  for _, a in ipairs(list or {}) do
    out[#out + 1] = " " .. util.shell_quote(a)
  end
  return table.concat(out)
end

--- Seconds the head waits for Ray to report every node: service.ray.timeout_s,
--- else 300 s but always inside the health probe's time (so that a missing
--- node is named before the probe gives up).
function M.ray_timeout_s(service)
  local health_s = service.health and service.health.timeout_s or 300
  return math.floor((service.ray and service.ray.timeout_s) or math.min(300, math.max(10, health_s - 30)))
end

local function ray_script(r, file, cluster_dir)
  local ray = r.service.ray or {}
  local res = (r.orchestration and r.orchestration.resources) or {}
  local gpus = (res.gpu_count or 0) * r.service.nodes
  local timeout = M.ray_timeout_s(r.service)
  local args = words(ray.args)
  local head_args = words(ray.head_args)
  local lines = {
    "#!/bin/bash",
    "# aibench: the Ray launcher of " .. file .. ": node {node_rank} of {nnodes}, Ray's head at {head_addr}:{head_port}.",
    "set -u",
    "# Each node its own temp dir: the file system is shared.",
    "ray_tmp=/tmp/aibench-ray-{instance_id}-{node_rank}",
    "# vLLM's workers on this node bind to its own address (vLLM's multi-node guide).",
    "export VLLM_HOST_IP={node_addr}",
    "if [ {node_rank} -ne 0 ]; then",
    "  # A worker: once the head's Ray listens (its node may load the image",
    "  # more slowly), joins its cluster and stays in the foreground.",
    "  deadline=$((SECONDS + " .. timeout .. "))",
    "  until (exec 3<>/dev/tcp/{head_addr}/{head_port}) 2>/dev/null; do",
    "    if [ \"$SECONDS\" -ge \"$deadline\" ]; then echo \"aibench: Ray's head at {head_addr}:{head_port} did not listen within " .. timeout .. " s\" >&2; exit 1; fi",
    "    sleep 1",
    "  done",
    "  exec ray start --address={head_addr}:{head_port} --node-ip-address={node_addr} --temp-dir=\"$ray_tmp\"" .. args .. " --block",
    "fi",
    "ray start --head --port={head_port} --node-ip-address={node_addr} --temp-dir=\"$ray_tmp\" --include-dashboard=false --disable-usage-stats" .. args .. head_args .. " --block &",
    "ray_head=$!",
    "# Wait until Ray reports {nnodes} nodes" .. (gpus > 0 and (" and " .. gpus .. " GPUs") or "") .. ", for at most " .. timeout .. " s.",
    "deadline=$((SECONDS + " .. timeout .. "))",
    "while :; do",
    "  status=$(ray status --address={head_addr}:{head_port} 2>/dev/null)",
    "  nodes=$(printf '%s\\n' \"$status\" | grep -c '^ *1 node_')",
    "  gpus=$(printf '%s\\n' \"$status\" | sed -n 's#^ *[0-9.]*/\\([0-9.]*\\) GPU.*#\\1#p' | head -1)",
    "  if [ \"$nodes\" -ge {nnodes} ] && awk -v g=\"${gpus:-0}\" 'BEGIN { exit !(g + 0 >= " .. gpus .. ") }'; then break; fi",
    "  if ! kill -0 \"$ray_head\" 2>/dev/null; then echo \"aibench: the Ray head ended before the cluster formed\" >&2; wait \"$ray_head\"; exit 1; fi",
    "  if [ \"$SECONDS\" -ge \"$deadline\" ]; then",
    "    echo \"aibench: after " .. timeout .. " s Ray reports $nodes of {nnodes} nodes and ${gpus:-0} of " .. gpus .. " GPUs\" >&2",
    "    # Name the nodes Ray does not have: the parts' addresses against Ray's own list.",
    "    ray_py=$(head -1 \"$(command -v ray)\" | sed 's/^#! *//; s#^/usr/bin/env  *##')",
    "    known=$(\"$ray_py\" -c 'import ray, sys; ray.init(address=sys.argv[1], logging_level=\"ERROR\"); print(\" \".join(n[\"NodeManagerAddress\"] for n in ray.nodes() if n[\"Alive\"]))' {head_addr}:{head_port} 2>/dev/null)",
    "    for rank in $(seq 0 $(({nnodes} - 1))); do",
    "      f=" .. util.shell_quote(cluster_dir) .. "/node-$rank.json",
    "      if [ ! -e \"$f\" ]; then echo \"aibench: missing from Ray: rank $rank, whose part never started\" >&2; continue; fi",
    "      addr=$(sed -n 's/.*\"addr\": *\"\\([^\"]*\\)\".*/\\1/p' \"$f\"); node=$(sed -n 's/.*\"node\": *\"\\([^\"]*\\)\".*/\\1/p' \"$f\")",
    "      case \" $known \" in *\" $addr \"*) ;; *) echo \"aibench: missing from Ray: $node ($addr, rank $rank)\" >&2 ;; esac",
    "    done",
    "    exit 1",
    "  fi",
    "  sleep 2",
    "done",
    "echo \"aibench: Ray reports $nodes nodes (${gpus:-0} GPUs): starting service.command on the head\"",
    "# service.command of " .. file .. ", on the head, as it would run alone (no set -u),",
    "# and told the cluster's address (ray.init() without one would look in /tmp/ray).",
    "(",
    "set +u",
    "export RAY_ADDRESS={head_addr}:{head_port}",
    (r.service.command:gsub("\n+$", "")),
    ") &",
    "# Whichever ends first, Ray's head or the command, ends this part.",
    "wait -n",
    "exit $?",
  }
  return table.concat(lines, "\n") .. "\n"
end

--- The script each node runs under its agent, by launcher, and the
--- agent's `cluster` section; nil for a server on one node.
function M.node_script(r, file, dir, nodes)
  if nodes <= 1 then
    return nil
  end
  local cluster_dir = fs.join(dir, "nodes")
  local health_s = r.service.health and r.service.health.timeout_s or 300
  local cluster = {
    nodes = nodes,
    launcher = r.service.launcher,
    dir = cluster_dir,
    -- The parts wait for each other at most as long as the service may take to become healthy.
    timeout_s = math.max(health_s, 60),
  }
  if r.service.launcher == "ray" then
    return ray_script(r, file, cluster_dir), cluster
  end
  return "#!/bin/bash\n# service.command of " .. file .. ": node {node_rank} of {nnodes} (head {head_host}:{head_port})\n"
    .. r.service.command, cluster
end

return M
