-- The MeluXina report's high-throughput test (section 9.1): 50 users, 20-token prompts,
-- 10-token outputs, 50 ms think time, 5000 requests.
--
--   aibench run examples/high-throughput.lua [--duration 20 | --requests 10] [--recipe ... --executor slurm]
require("aibench.scenario").run("vllm-high-throughput-test", arg)
