//! Prefix caching as vLLM (v1) does it: KV blocks of `block_size` tokens are
//! identified by a hash chained from the start of the sequence, so a block
//! is reused only when everything before it is the same too. A new request
//! reuses its longest cached run of whole blocks (never the whole prompt:
//! the last prompt token is always computed) and skips their prefill. Blocks
//! no sequence holds stay cached until the KV budget needs their room; then
//! the least recently freed go first.
//!
//! Token accounting: blocks held by running sequences count as used KV;
//! cached blocks nobody holds count as free but evictable.

use std::collections::{BTreeMap, HashMap};

/// The chained hashes of the full blocks of `tokens`.
pub fn block_hashes(tokens: &[u32], block: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(tokens.len() / block.max(1));
    let mut h: u64 = 0x5151_5151_5151_5151;
    for chunk in tokens.chunks_exact(block.max(1)) {
        for t in chunk {
            h = mix(h ^ *t as u64);
        }
        out.push(h);
    }
    out
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

struct Block {
    refs: u32,
    /// When it was last freed (its key in `free` while `refs == 0`).
    tick: u64,
}

pub struct PrefixCache {
    pub block: u64,
    blocks: HashMap<u64, Block>,
    /// Cached blocks nobody holds, least recently freed first.
    free: BTreeMap<u64, u64>,
    tick: u64,
}

impl PrefixCache {
    pub fn new(block: u64) -> PrefixCache {
        PrefixCache { block: block.max(1), blocks: HashMap::new(), free: BTreeMap::new(), tick: 0 }
    }

    /// Tokens in cached blocks that nobody holds (evictable).
    pub fn free_tokens(&self) -> u64 {
        self.free.len() as u64 * self.block
    }

    /// How many of `hashes` (a prefix of them) are cached, using at most
    /// `max_blocks`; and the tokens of those that nobody holds now.
    pub fn lookup(&self, hashes: &[u64], max_blocks: usize) -> (usize, u64) {
        let mut n = 0;
        let mut free = 0;
        for h in hashes.iter().take(max_blocks) {
            match self.blocks.get(h) {
                Some(b) => {
                    if b.refs == 0 {
                        free += self.block;
                    }
                    n += 1;
                }
                None => break,
            }
        }
        (n, free)
    }

    /// Takes a reference to a cached block; returns whether it was free
    /// (its tokens move from free to used).
    pub fn acquire(&mut self, h: u64) -> bool {
        let Some(b) = self.blocks.get_mut(&h) else { return false };
        let was_free = b.refs == 0;
        if was_free {
            self.free.remove(&b.tick);
        }
        b.refs += 1;
        was_free
    }

    /// Adds a block computed by a sequence that holds it. `false` when the
    /// block was cached already (another sequence computed the same): the
    /// caller then holds that one instead (see `acquire`).
    pub fn insert_held(&mut self, h: u64) -> bool {
        if self.blocks.contains_key(&h) {
            return false;
        }
        self.blocks.insert(h, Block { refs: 1, tick: 0 });
        true
    }

    /// Adds a computed block nobody holds (the output of a finished
    /// sequence). `false` when it was cached already.
    pub fn insert_free(&mut self, h: u64) -> bool {
        if self.blocks.contains_key(&h) {
            return false;
        }
        self.tick += 1;
        self.blocks.insert(h, Block { refs: 0, tick: self.tick });
        self.free.insert(self.tick, h);
        true
    }

    /// Drops a reference; returns whether the block became free.
    pub fn release(&mut self, h: u64) -> bool {
        let Some(b) = self.blocks.get_mut(&h) else { return false };
        b.refs = b.refs.saturating_sub(1);
        if b.refs > 0 {
            return false;
        }
        self.tick += 1;
        b.tick = self.tick;
        self.free.insert(self.tick, h);
        true
    }

    /// Evicts the least recently freed block; `false` when none is free.
    pub fn evict_one(&mut self) -> bool {
        let Some((_, h)) = self.free.pop_first() else { return false };
        self.blocks.remove(&h);
        true
    }

    pub fn clear(&mut self) {
        self.blocks.clear();
        self.free.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_chain_from_the_start() {
        let a: Vec<u32> = (0..300).collect();
        let mut b = a.clone();
        b[200] = 9999; // differs in the second block of 128
        let (ha, hb) = (block_hashes(&a, 128), block_hashes(&b, 128));
        assert_eq!(ha.len(), 2);
        assert_eq!(ha[0], hb[0]);
        assert_ne!(ha[1], hb[1]);
        // The same block after a different first block is a different block.
        let mut c = a.clone();
        c[0] = 7;
        assert_ne!(block_hashes(&c, 128)[1], ha[1]);
    }

    #[test]
    fn reuse_release_and_lru_eviction() {
        let mut c = PrefixCache::new(4);
        assert!(c.insert_held(1));
        assert!(c.insert_held(2));
        assert!(!c.insert_held(1));
        assert_eq!(c.lookup(&[1, 2, 3], 9), (2, 0));
        assert!(c.release(1));
        assert!(c.release(2));
        assert_eq!(c.free_tokens(), 8);
        assert_eq!(c.lookup(&[1, 2], 9), (2, 8));
        assert_eq!(c.lookup(&[1, 2], 1), (1, 4));
        assert!(c.acquire(2)); // was free
        assert_eq!(c.free_tokens(), 4);
        assert!(c.evict_one()); // 1, the only free one
        assert_eq!(c.lookup(&[1, 2], 9), (0, 0), "the chain breaks at 1");
        assert!(!c.evict_one());
        assert!(c.release(2));
        assert!(c.insert_free(5));
        assert!(c.evict_one()); // 2 was freed before 5
        assert_eq!(c.lookup(&[5], 9), (1, 4));
    }
}
