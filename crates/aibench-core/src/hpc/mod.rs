//! The HPC side of a run's numbers: SLURM accounting of its jobs (`sacct`),
//! what the run cost and how efficiently it served (`cost`), and who else
//! was on its nodes (`node`). Engines only: the Lua managers decide which
//! jobs belong to a run.

pub mod cost;
pub mod node;
pub mod sacct;
