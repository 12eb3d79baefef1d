-- The MeluXina report's stress test (section 9.1): 20 users, 256-token prompts,
-- 128-token outputs, 100 ms think time, 10 minutes.
--
--   aibench run examples/stress-test.lua [--duration 30] [--recipe vllm-server --executor slurm]
require("aibench.scenario").run("vllm-stress-test", arg)
