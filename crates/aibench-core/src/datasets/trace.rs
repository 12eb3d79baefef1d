//! Timestamped traces in Mooncake's format: one JSON object per line,
//! `{"timestamp": ms, "input_length": n, "output_length": m, "hash_ids": [...]}`.
//! Equal hash ids mean equal blocks of `block_size` tokens, so a replay that
//! gives equal ids equal token blocks reproduces the trace's prefix sharing.
//!
//! Held compactly (a million lines in well under 200 MB): 24 bytes a line
//! and 4 a hash id, in fixed-size chunks so that growing never copies them.

use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::{Common, DatasetStats, Loc};

fn default_block_size() -> u64 {
    512
}

/// `type = "trace"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFile {
    pub path: String,
    /// Tokens per hash id (Mooncake's traces: 512).
    #[serde(default = "default_block_size")]
    pub block_size: u64,
    #[serde(skip)]
    pub common: Common,
}

/// One request of the trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// Milliseconds from the trace's first request.
    pub at_ms: f64,
    pub input: u32,
    pub output: u32,
    hash_at: u32,
    hash_len: u32,
}

const CHUNK: usize = 1 << 20;

/// The trace: its entries in order and their hash ids.
#[derive(Debug, Default)]
pub struct Trace {
    pub entries: Vec<Entry>,
    chunks: Vec<Vec<u32>>,
    pub block_size: u32,
    /// Lines of the file, for the error of a bad entry.
    pub path: String,
}

#[derive(Deserialize)]
struct Line {
    timestamp: Option<f64>,
    input_length: Option<u64>,
    output_length: Option<u64>,
    #[serde(default)]
    hash_ids: Vec<u64>,
}

impl Trace {
    /// The hash ids of entry `i`.
    pub fn hashes(&self, e: &Entry) -> &[u32] {
        let c = (e.hash_at as usize) / CHUNK;
        let at = (e.hash_at as usize) % CHUNK;
        match self.chunks.get(c) {
            Some(chunk) => &chunk[at..at + e.hash_len as usize],
            None => &[],
        }
    }

    fn push_hashes(&mut self, ids: &[u32]) -> u32 {
        let fits = self.chunks.last().is_some_and(|c| c.len() + ids.len() <= CHUNK);
        if !fits {
            self.chunks.push(Vec::with_capacity(CHUNK.max(ids.len())));
        }
        let n = self.chunks.len() - 1;
        let c = &mut self.chunks[n];
        let at = n * CHUNK + c.len();
        c.extend_from_slice(ids);
        at as u32
    }

    /// Reads a trace file, checking every line (file:line and the field in
    /// each message); filters and sampling from `common`.
    pub fn load(spec: &TraceFile, stats: &mut DatasetStats) -> Result<Trace, String> {
        let path = &spec.path;
        let common = &spec.common;
        if spec.block_size == 0 || spec.block_size > u32::MAX as u64 {
            return Err(format!("dataset.block_size: expected a positive number of tokens, got {}", spec.block_size));
        }
        if common.shuffle {
            return Err(
                "dataset.shuffle: a trace keeps its order (its timestamps); use sample = N for its first N lines"
                    .into(),
            );
        }
        let mut r = super::open_text(path)?;
        let mut t = Trace { block_size: spec.block_size as u32, path: path.clone(), ..Default::default() };
        let mut buf = Vec::with_capacity(4096);
        let mut ids: Vec<u32> = Vec::with_capacity(256);
        let (mut first_ms, mut last_ms) = (None::<f64>, f64::NEG_INFINITY);
        let mut line_no = 0usize;
        let limit = common.sample.unwrap_or(u64::MAX);
        loop {
            buf.clear();
            let n = r.read_until(b'\n', &mut buf).map_err(super::read_error)?;
            if n == 0 || t.entries.len() as u64 >= limit {
                break;
            }
            line_no += 1;
            if line_no.is_multiple_of(super::CHECK_EVERY) {
                super::check_interrupt(path)?;
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            stats.read += 1;
            let at = Loc { path: path.clone(), line: Some(line_no), record: stats.read as usize };
            let line: Line = match serde_json::from_slice(&buf) {
                Ok(l) => l,
                Err(e) => {
                    stats.bad(common, &at, &format!("invalid JSON: {e}"))?;
                    continue;
                }
            };
            let checked = check(&line, spec.block_size, last_ms, &mut ids);
            let (ts, input, output) = match checked {
                Ok(v) => v,
                Err(msg) => {
                    stats.bad(common, &at, &msg)?;
                    continue;
                }
            };
            check_time(&at, ts, last_ms)?;
            last_ms = ts;
            if common.max_prompt_tokens.is_some_and(|m| input > m) {
                stats.skip("too_long");
                continue;
            }
            let first = *first_ms.get_or_insert(ts);
            let hash_at = t.push_hashes(&ids);
            t.entries.push(Entry {
                at_ms: ts - first,
                input: input as u32,
                output: common.cap_output(output) as u32,
                hash_at,
                hash_len: ids.len() as u32,
            });
        }
        t.entries.shrink_to_fit();
        if let Some(c) = t.chunks.last_mut() {
            c.shrink_to_fit();
        }
        stats.used = t.entries.len() as u64;
        if t.entries.is_empty() {
            return Err(super::empty_error(stats).to_string());
        }
        Ok(t)
    }

    /// The number of whole `block`-token blocks each request could reuse
    /// from the requests before it, were each cached as its hash ids say:
    /// what a prefix cache with that block size would hit (the last block of
    /// a prompt is never reused, as in vLLM; `fixed` tokens come before the
    /// blocks, e.g. a BOS token counted in the trace's first block).
    pub fn reusable_blocks(&self, block: u32) -> Vec<u64> {
        let mut seen = std::collections::HashSet::<(usize, u64)>::new();
        let mut out = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let ids = self.hashes(e);
            // Chains: the prefix of k ids is identified by (k, hash of the ids).
            let mut shared = 0usize;
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            let mut chain = Vec::with_capacity(ids.len());
            for (k, id) in ids.iter().enumerate() {
                h = (h ^ *id as u64).wrapping_mul(0x0100_0000_01b3);
                chain.push((k, h));
                if shared == k && seen.contains(&(k, h)) {
                    shared = k + 1;
                }
            }
            // Only whole trace blocks are shared content; the last may be partial.
            let whole = |k: usize| {
                let full = (e.input as u64 / self.block_size as u64) as usize;
                k.min(full)
            };
            let tokens = whole(shared) as u64 * self.block_size as u64;
            let max_blocks = (e.input as u64).saturating_sub(1) / block as u64;
            out.push((tokens / block as u64).min(max_blocks));
            seen.extend(chain.into_iter().take(whole(ids.len())));
        }
        out
    }
}

const DAY_MS: f64 = 86_400_000.0;
/// The longest wait between two requests of a trace: a day.
pub const MAX_GAP_MS: f64 = DAY_MS;
/// The latest timestamp: 1e13 ms from the epoch is the year 2286.
pub const MAX_TIMESTAMP_MS: f64 = 1e13;

/// A duration in milliseconds, in days or years, for messages.
fn span(ms: f64) -> String {
    let days = ms / DAY_MS;
    if days >= 365.0 { format!("{:.0} years", days / 365.25) } else { format!("{days:.1} days") }
}

/// Refuses an absurd timestamp (beyond the year 2286, or not
/// milliseconds) and a gap of over a day between requests, which a replay
/// would wait through in silence. Not a bad line: no line after it could
/// be timed either.
fn check_time(at: &Loc, ts: f64, last_ms: f64) -> Result<(), String> {
    if last_ms.is_finite() && ts - last_ms > MAX_GAP_MS {
        return Err(format!(
            "dataset.path: {at}: timestamp: {ts} ms is {} after the previous request's {last_ms} ms; a replay would wait that long (the most allowed between two requests is a day): fix the trace's timestamps, or split it",
            span(ts - last_ms)
        ));
    }
    if ts > MAX_TIMESTAMP_MS {
        return Err(format!(
            "dataset.path: {at}: timestamp: {ts} is beyond {MAX_TIMESTAMP_MS:e} ms (the year 2286); timestamps are milliseconds (from the trace's start or the Unix epoch), is this one in micro- or nanoseconds?"
        ));
    }
    Ok(())
}

/// Checks one line: (timestamp, input, output), with the ids in `ids`.
fn check(l: &Line, block: u64, last_ms: f64, ids: &mut Vec<u32>) -> Result<(f64, u64, u64), String> {
    let ts = l.timestamp.ok_or("timestamp: missing (milliseconds)")?;
    if !ts.is_finite() || ts < 0.0 {
        return Err(format!("timestamp: expected non-negative milliseconds, got {ts}"));
    }
    if ts < last_ms {
        return Err(format!("timestamp: {ts} is before the previous line's {last_ms}; a trace must be in time order"));
    }
    let input = l.input_length.ok_or("input_length: missing")?;
    let output = l.output_length.ok_or("output_length: missing")?;
    if input == 0 || input > u32::MAX as u64 {
        return Err(format!("input_length: expected a positive number of tokens, got {input}"));
    }
    if output == 0 || output > u32::MAX as u64 {
        return Err(format!("output_length: expected a positive number of tokens, got {output}"));
    }
    let blocks = input.div_ceil(block);
    if l.hash_ids.len() as u64 > blocks {
        return Err(format!(
            "hash_ids: {} ids are more than the {blocks} blocks of {block} tokens that input_length {input} has (is dataset.block_size right?)",
            l.hash_ids.len()
        ));
    }
    ids.clear();
    for id in &l.hash_ids {
        ids.push(u32::try_from(*id).map_err(|_| format!("hash_ids: {id} is beyond 4294967295"))?);
    }
    Ok((ts, input, output))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::OnBadLine;

    fn spec(path: &str) -> TraceFile {
        TraceFile { path: path.into(), block_size: 512, common: Common::default() }
    }

    fn fixture() -> String {
        format!("{}/../../tests/fixtures/mooncake-200.jsonl", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn the_seeded_fixture_loads_in_order() {
        let mut stats = DatasetStats::default();
        let t = Trace::load(&spec(&fixture()), &mut stats).unwrap();
        assert_eq!(t.entries.len(), 200);
        assert_eq!(t.entries[0].at_ms, 0.0);
        assert!(t.entries.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        for e in &t.entries {
            assert_eq!(t.hashes(e).len() as u64, (e.input as u64).div_ceil(512));
        }
        // Shared prefixes: some request reuses blocks of an earlier one.
        let reuse = t.reusable_blocks(128);
        assert!(reuse.iter().sum::<u64>() > 100, "{reuse:?}");
        assert_eq!(reuse[0], 0);
        let mut sampled = spec(&fixture());
        sampled.common.sample = Some(10);
        sampled.common.max_output_tokens = Some(5);
        let t = Trace::load(&sampled, &mut DatasetStats::default()).unwrap();
        assert_eq!(t.entries.len(), 10);
        assert!(t.entries.iter().all(|e| e.output <= 5));
    }

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let p = p.to_str().unwrap();
        let write = |s: &str| std::fs::write(p, s).unwrap();
        write(
            "{\"timestamp\": 5, \"input_length\": 600, \"output_length\": 3, \"hash_ids\": [1, 2]}\n{\"timestamp\": 4, \"input_length\": 10, \"output_length\": 3}\n",
        );
        let e = Trace::load(&spec(p), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains(&format!("{p}:2: timestamp: 4 is before the previous line's 5")), "{e}");
        write("{\"timestamp\": 5, \"input_length\": 600, \"output_length\": 3, \"hash_ids\": [1, 2, 3]}\n");
        let e = Trace::load(&spec(p), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains(&format!("{p}:1: hash_ids: 3 ids")), "{e}");
        write("{\"timestamp\": 5, \"output_length\": 3}\nnot json\n");
        let e = Trace::load(&spec(p), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains(&format!("{p}:1: input_length: missing")), "{e}");
        let mut s = spec(p);
        s.common.on_bad_line = OnBadLine::Skip;
        let e = Trace::load(&s, &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("no record of") && e.contains("2 malformed"), "{e}");
        let mut s = spec(p);
        s.common.shuffle = true;
        assert!(Trace::load(&s, &mut DatasetStats::default()).unwrap_err().starts_with("dataset.shuffle"));
        let e = Trace::load(&spec("/nonexistent/t.jsonl"), &mut DatasetStats::default()).unwrap_err();
        assert!(e.starts_with("dataset.path: cannot read '/nonexistent/t.jsonl'"), "{e}");
    }

    #[test]
    fn absurd_timestamps_and_gaps_are_refused_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let p = p.to_str().unwrap();
        let line = |ts: &str| format!("{{\"timestamp\": {ts}, \"input_length\": 10, \"output_length\": 3}}\n");
        // About 31,000 years between two requests.
        std::fs::write(p, line("0") + &line("1e15")).unwrap();
        let e = Trace::load(&spec(p), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains(&format!("{p}:2: timestamp: 1000000000000000")), "{e}");
        assert!(e.contains("31688 years after the previous request's 0 ms"), "{e}");
        // on_bad_line = "skip" does not skip it: no later line could be timed.
        let mut s = spec(p);
        s.common.on_bad_line = OnBadLine::Skip;
        assert!(Trace::load(&s, &mut DatasetStats::default()).unwrap_err().contains("is a day"));
        // A timestamp in microseconds since the epoch.
        std::fs::write(p, line("1700000000000000")).unwrap();
        let e = Trace::load(&spec(p), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains(&format!("{p}:1: timestamp: 1700000000000000 is beyond 1e13 ms")), "{e}");
        // Epoch milliseconds and a gap under a day are fine.
        std::fs::write(p, line("1700000000000") + &line("1700000000000") + &line("1700080000000")).unwrap();
        let t = Trace::load(&spec(p), &mut DatasetStats::default()).unwrap();
        assert_eq!(t.entries.iter().map(|e| e.at_ms).collect::<Vec<_>>(), vec![0.0, 0.0, 80_000_000.0]);
        std::fs::write(p, line("0") + &line("86400001")).unwrap();
        let e = Trace::load(&spec(p), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains(&format!("{p}:2: timestamp: 86400001 ms is 1.0 days after")), "{e}");
    }

    #[test]
    fn a_byte_order_mark_is_accepted_and_a_stop_request_ends_loading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let p = p.to_str().unwrap();
        let line = "{\"timestamp\": 5, \"input_length\": 600, \"output_length\": 3, \"hash_ids\": [1, 2]}\n";
        std::fs::write(p, format!("\u{feff}{line}{line}")).unwrap();
        let t = Trace::load(&spec(p), &mut DatasetStats::default()).unwrap();
        assert_eq!(t.entries.len(), 2);
        std::fs::write(p, line.repeat(10_000)).unwrap();
        let _stop = crate::inputs::TestInterrupt::start();
        let e = Trace::load(&spec(p), &mut DatasetStats::default()).unwrap_err();
        assert_eq!(e, format!("dataset.path: interrupted (SIGINT) while loading '{p}'"));
        let e = Trace::load(&spec("/dev/zero"), &mut DatasetStats::default()).unwrap_err();
        assert!(e.contains("'/dev/zero' is a character device"), "{e}");
    }
}
