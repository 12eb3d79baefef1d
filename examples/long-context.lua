-- The MeluXina report's long-context test (section 9.1): 5 users, 2048-token prompts,
-- 512-token outputs, 10 minutes.
--
--   aibench run examples/long-context.lua [--duration 30] [--recipe vllm-server --executor slurm]
require("aibench.scenario").run("vllm-long-context-test", arg)
