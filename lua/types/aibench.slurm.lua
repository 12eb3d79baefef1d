---@meta aibench.slurm

---The SLURM executor: sbatch, squeue (one call for all jobs), sacct or
---scontrol, scancel. Its functions are aibench.Executor's.
---@class aibench.slurm: aibench.Executor
local slurm = {}

return slurm
