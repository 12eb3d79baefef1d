-- The MeluXina report's simple test (section 9.1): 3 users, 50-token prompts, 20-token
-- outputs, 500 ms think time, 2 minutes. Deploys the server (the simulator by
-- default), starts a monitor when Prometheus is installed, benchmarks, saves
-- the result under results/ and cleans up.
--
--   aibench run examples/simple-test.lua [--duration 20] [--recipe vllm-server --executor slurm]
require("aibench.scenario").run("vllm-simple-test", arg)
