//! Measurements: HdrHistograms (microseconds, 3 significant digits, up to an
//! hour) kept per shard and merged at the end, error counts by class with a
//! few sample messages, and a per-second time series. `recorder` is what a
//! request adds to a shard, `live` what the progress reads while the run
//! goes, `codec` how histograms are encoded in results and read back.

mod codec;
mod live;
mod recorder;

pub use codec::{CURVE_PERCENTILES, HIST_MAX_US, Summary, add_into, decode, encode, new_hist, percentile_curve};
pub use live::{Live, LiveHist};
pub use recorder::{
    AskedServedSums, CONNECT, Hists, ITL, LATENCY, LATENCY_FROM_INTENDED, METRICS, QUEUE, Record, SEND_LAG, Second,
    SessionSums, Shard, TPOT, TTFT, TargetSums, TurnSums, add_sample,
};
