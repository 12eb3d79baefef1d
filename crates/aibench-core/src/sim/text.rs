//! How the simulator counts prompt tokens and makes up output text.
//!
//! Without a tokenizer (see `tokens.rs`) a prompt's length in tokens is its
//! number of whitespace-separated words (at least 1); a prompt given as token
//! ids counts one token per id; a chat request counts the words of every
//! message's text. Output: every token is one pseudo-word with a leading space, chosen by a
//! hash of (seed, request number, position): deterministic for a seed.

/// Prompt tokens of a text under the simulator's rule.
pub fn count_tokens(text: &str) -> u32 {
    (text.split_whitespace().count() as u32).max(1)
}

/// The pseudo-words output is made of.
pub const WORDS: &[&str] = &[
    "the",
    "model",
    "token",
    "batch",
    "cache",
    "node",
    "cluster",
    "queue",
    "latency",
    "through",
    "put",
    "serve",
    "request",
    "stream",
    "prefill",
    "decode",
    "kernel",
    "tensor",
    "layer",
    "weight",
    "memory",
    "bandwidth",
    "compute",
    "schedule",
    "job",
    "slurm",
    "partition",
    "factory",
    "inference",
    "prompt",
    "answer",
    "value",
    "vector",
    "graph",
    "time",
    "data",
    "first",
    "next",
    "over",
    "under",
    "with",
    "from",
    "into",
    "about",
    "fast",
    "slow",
    "large",
    "small",
    "high",
    "low",
    "open",
    "close",
    "load",
    "test",
    "bench",
    "mark",
    "run",
    "step",
    "rate",
    "user",
    "think",
    "wait",
];

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: cheap, well spread.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The text of output token `index` (a word; the wire adds the space).
pub fn word(seed: u64, request: u64, index: u32) -> &'static str {
    WORDS[pick(seed, request, index, WORDS.len())]
}

/// A deterministic index below `n` for output token `index` of `request`.
pub fn pick(seed: u64, request: u64, index: u32, n: usize) -> usize {
    let h = mix(seed ^ mix(request.wrapping_mul(0x1000_0000_01B3) ^ index as u64));
    (h % n as u64) as usize
}

/// A deterministic uniform draw in [0, 1) for (seed, request, salt).
pub fn unit(seed: u64, request: u64, salt: u64) -> f64 {
    let h = mix(seed ^ mix(request ^ mix(salt)));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_rule() {
        assert_eq!(count_tokens("a b  c\n d"), 4);
        assert_eq!(count_tokens(""), 1);
    }

    #[test]
    fn words_are_deterministic() {
        let a: Vec<_> = (0..20).map(|i| word(7, 3, i)).collect();
        let b: Vec<_> = (0..20).map(|i| word(7, 3, i)).collect();
        let c: Vec<_> = (0..20).map(|i| word(8, 3, i)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let u = unit(1, 2, 3);
        assert!((0.0..1.0).contains(&u));
    }
}
