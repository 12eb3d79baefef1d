//! Prompts of an exact length in the served model's tokens.
//!
//! A prompt is English words drawn from a seeded generator, so prompts are
//! varied, reproducible and distinct (their first words differ: no two share
//! a long prefix a prefix cache could serve). Each word's cost in tokens is
//! measured once with the counter; with a tokenizer that splits words before
//! merging (byte-level BPE, SentencePiece: checked when the maker is built)
//! a prompt's length is the sum of its words' costs plus what the template
//! or the special tokens add, so words are chosen to sum to the target
//! exactly. Prompts are then counted again (all of them when there are few,
//! a sample of many), and a tokenizer that is not additive gets every prompt
//! counted and adjusted one word at a time.

use std::sync::Arc;

use rand::{Rng, RngExt};

use super::server::ServerTokenizer;
use super::{LocalTokenizer, Message};

/// Words that most tokenizers encode in one or two tokens.
pub const VOCAB: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "she",
    "other",
    "its",
    "may",
    "these",
    "what",
    "them",
    "than",
    "some",
    "him",
    "time",
    "into",
    "only",
    "do",
    "could",
    "new",
    "about",
    "two",
    "first",
    "then",
    "also",
    "any",
    "like",
    "my",
    "now",
    "over",
    "such",
    "our",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "men",
    "work",
    "long",
    "get",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
    "us",
    "great",
    "old",
    "year",
    "off",
    "come",
    "since",
    "against",
    "go",
    "came",
    "right",
    "used",
    "take",
    "three",
    "states",
    "himself",
    "few",
    "house",
    "use",
    "during",
    "without",
    "again",
    "place",
    "around",
    "however",
    "home",
    "small",
    "found",
    "thought",
    "went",
    "say",
    "part",
    "once",
    "general",
    "high",
    "upon",
    "school",
    "every",
    "does",
    "got",
    "united",
    "left",
    "number",
    "course",
    "war",
    "until",
    "always",
    "away",
    "something",
    "fact",
    "though",
    "water",
    "less",
    "public",
    "put",
    "think",
    "almost",
    "hand",
    "enough",
    "far",
    "took",
    "head",
    "yet",
    "government",
    "system",
    "better",
    "set",
    "told",
    "nothing",
    "night",
    "end",
    "why",
    "called",
    "eyes",
    "find",
    "going",
    "look",
    "asked",
    "later",
    "knew",
    "point",
    "next",
];

/// What prompt lengths are counted with.
#[derive(Clone)]
pub enum Counter {
    Local(Arc<LocalTokenizer>),
    Server(ServerTokenizer),
    /// Whitespace-separated words: an approximation where no tokenizer exists.
    Words,
}

impl Counter {
    /// How prompt lengths were made, as results state it.
    pub fn source(&self) -> String {
        match self {
            Counter::Local(t) => format!("tokenizer {}", t.path.display()),
            Counter::Server(_) => "server /tokenize".into(),
            Counter::Words => "words (approximate)".into(),
        }
    }

    pub fn exact(&self) -> bool {
        !matches!(self, Counter::Words)
    }

    /// Tokens of `text`: a completions prompt (with the special tokens the
    /// server adds), or, `chat`, the content of one user message.
    pub async fn count(&self, text: &str, chat: bool) -> Result<usize, String> {
        Ok(match (self, chat) {
            (Counter::Local(t), false) => t.count(text, true),
            (Counter::Local(t), true) => t.count_chat(&[Message::user(text)])?,
            (Counter::Server(s), false) => s.encode(text, true).await?.len(),
            (Counter::Server(s), true) => s.encode_chat(&[Message::user(text)]).await?.len(),
            (Counter::Words, _) => super::count_words(text).max(1),
        })
    }

    /// Tokens of a chat conversation as the server renders it (with the
    /// generation prompt).
    pub async fn count_messages(&self, messages: &[Message]) -> Result<usize, String> {
        Ok(match self {
            Counter::Local(t) => t.count_chat(messages)?,
            Counter::Server(s) => s.encode_chat(messages).await?.len(),
            Counter::Words => messages.iter().map(|m| super::count_words(&m.content)).sum::<usize>().max(1),
        })
    }

    /// Tokens of a bare piece of text (no special tokens, no template).
    pub async fn bare(&self, text: &str) -> Result<usize, String> {
        Ok(match self {
            Counter::Local(t) => t.count(text, false),
            Counter::Server(s) => s.encode(text, false).await?.len(),
            Counter::Words => super::count_words(text),
        })
    }

    /// The token ids of a completions prompt, as the server would see it.
    pub async fn ids(&self, text: &str) -> Result<Vec<u32>, String> {
        match self {
            Counter::Local(t) => Ok(t.encode(text, true)),
            Counter::Server(s) => s.encode(text, true).await,
            Counter::Words => Err("token-id prompts need a tokenizer (target.tokenizer)".into()),
        }
    }
}

/// Builds prompts of exact lengths with one counter.
pub struct PromptMaker {
    counter: Counter,
    chat: bool,
    /// Tokens added around the words: special tokens, or the chat template.
    fixed: usize,
    /// Cost of each VOCAB word first in the prompt, and after a space.
    first: Vec<usize>,
    rest: Vec<usize>,
    /// Indices of VOCAB sorted by their cost after a space.
    by_cost: Vec<usize>,
    /// Indices of the one-token words (fill the last tokens exactly).
    ones: Vec<usize>,
    /// Lengths are sums of word costs (checked at construction).
    additive: bool,
    /// Prompts made so far (the first are always counted again).
    made: std::sync::atomic::AtomicU64,
}

/// Prompts counted again after they are made, at the least.
const VERIFY_FIRST: u64 = 64;
/// And one in this many after that.
const VERIFY_EVERY: u64 = 100;

impl PromptMaker {
    /// Measures the words' costs with `counter` (for the chat API, `chat`:
    /// the template's tokens are counted too).
    pub async fn new(counter: Counter, chat: bool) -> Result<PromptMaker, String> {
        let mut first = Vec::with_capacity(VOCAB.len());
        let mut rest = Vec::with_capacity(VOCAB.len());
        for w in VOCAB {
            first.push(counter.bare(w).await?.max(1));
            rest.push(counter.bare(&format!(" {w}")).await?.max(1));
        }
        // What the server adds around the words, measured on one word.
        let fixed = counter.count(VOCAB[0], chat).await?.saturating_sub(first[0]);
        let mut by_cost: Vec<usize> = (0..VOCAB.len()).collect();
        by_cost.sort_by_key(|i| rest[*i]);
        let ones: Vec<usize> = by_cost.iter().copied().filter(|i| rest[*i] == 1).collect();
        let mut m = PromptMaker {
            counter,
            chat,
            fixed,
            first,
            rest,
            by_cost,
            ones,
            additive: true,
            made: std::sync::atomic::AtomicU64::new(0),
        };
        // Additive? Check a few sentences against the sum of their words.
        let mut rng = {
            use rand::SeedableRng;
            rand_chacha::ChaCha8Rng::seed_from_u64(7)
        };
        for n in [1usize, 2, 7, 40] {
            let (text, predicted) = m.words(n, &mut rng);
            if m.counter.count(&text, chat).await? != predicted + m.fixed {
                m.additive = false;
            }
        }
        if m.ones.is_empty() {
            m.additive = false;
        }
        Ok(m)
    }

    pub fn counter(&self) -> &Counter {
        &self.counter
    }

    /// The fewest tokens a prompt can have (the added tokens and one word).
    pub fn min_tokens(&self) -> usize {
        self.fixed + 1
    }

    /// `n` random words and their predicted cost (without `fixed`).
    fn words(&self, n: usize, rng: &mut impl Rng) -> (String, usize) {
        let mut s = String::with_capacity(n * 6);
        let mut cost = 0;
        for k in 0..n {
            let i = rng.random_range(0..VOCAB.len());
            if k > 0 {
                s.push(' ');
                cost += self.rest[i];
            } else {
                cost += self.first[i];
            }
            s.push_str(VOCAB[i]);
        }
        (s, cost)
    }

    /// Text whose predicted length is exactly `budget` tokens.
    fn compose(&self, budget: usize, rng: &mut impl Rng) -> String {
        self.text(budget, rng, true)
    }

    /// Words whose predicted cost is exactly `budget` tokens: a prompt's
    /// start (`first`), or a continuation that starts with a space, so that
    /// pieces joined are as long as their sum (with an additive counter).
    pub fn text(&self, budget: usize, rng: &mut impl Rng, first: bool) -> String {
        let mut s = String::with_capacity(budget * 6);
        let cheapest = self.ones.first().copied().unwrap_or(self.by_cost[0]);
        let mut left = budget;
        if first {
            // The first word: any whose cost fits.
            let fit_first: Vec<usize> = (0..VOCAB.len()).filter(|i| self.first[*i] <= budget).collect();
            let i = if fit_first.is_empty() { cheapest } else { fit_first[rng.random_range(0..fit_first.len())] };
            s.push_str(VOCAB[i]);
            left = budget.saturating_sub(self.first[i]);
        }
        let dearest = self.by_cost.last().map(|j| self.rest[*j]).unwrap_or(0);
        while left > 0 {
            // Among the words that still fit (by_cost is sorted by cost).
            let n = if left >= dearest {
                self.by_cost.len()
            } else {
                self.by_cost.partition_point(|j| self.rest[*j] <= left)
            };
            let j = if n == 0 { cheapest } else { self.by_cost[rng.random_range(0..n)] };
            s.push(' ');
            s.push_str(VOCAB[j]);
            left = left.saturating_sub(self.rest[j]);
        }
        s
    }

    /// The same words for the same seed: a block of `budget` tokens that
    /// every request holding that block shares (trace hash ids, groups).
    pub fn block(&self, budget: usize, seed: u64, first: bool) -> String {
        use rand::SeedableRng;
        self.text(budget, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed), first)
    }

    /// Tokens the server adds around the words (special tokens, or the
    /// chat template's).
    pub fn fixed(&self) -> usize {
        self.fixed
    }

    /// Whether a prompt is as long as the sum of its words' costs, so that
    /// blocks put together have exactly the sum of their lengths.
    pub fn additive(&self) -> bool {
        self.additive
    }

    /// A prompt of exactly `target` tokens, as the counter counts it.
    pub async fn make(&self, target: usize, rng: &mut impl Rng) -> Result<String, String> {
        if target < self.min_tokens() {
            return Err(format!(
                "{target} tokens is too few: the {} adds {} token(s) of its own, so a prompt has at least {}",
                if self.chat { "chat template" } else { "tokenizer" },
                self.fixed,
                self.min_tokens()
            ));
        }
        let mut text = self.compose(target - self.fixed, rng);
        let k = self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let check = !self.additive || k < VERIFY_FIRST || k.is_multiple_of(VERIFY_EVERY);
        if !check {
            return Ok(text);
        }
        // Counted again; adjusted one word at a time where the sum was off.
        for _ in 0..256 {
            let n = self.counter.count(&text, self.chat).await?;
            if n == target {
                return Ok(text);
            }
            if n < target {
                let j = self.ones.first().copied().unwrap_or(self.by_cost[0]);
                text.push(' ');
                text.push_str(VOCAB[j]);
            } else {
                match text.rfind(' ') {
                    Some(p) => text.truncate(p),
                    None => break,
                }
            }
        }
        Err(format!("cannot make a prompt of exactly {target} tokens with {}", self.counter.source()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn local() -> Counter {
        let dir = format!("{}/../../tests/fixtures/tokenizer-en-bpe-8k", env!("CARGO_MANIFEST_DIR"));
        Counter::Local(Arc::new(LocalTokenizer::load(&dir).unwrap()))
    }

    #[tokio::test]
    async fn exact_lengths_for_completions_and_chat() {
        for chat in [false, true] {
            let m = PromptMaker::new(local(), chat).await.unwrap();
            assert!(m.additive, "byte-level BPE splits words first");
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let mut firsts = std::collections::HashSet::new();
            for target in [32usize, 128, 1000, 4000] {
                for _ in 0..5 {
                    let p = m.make(target, &mut rng).await.unwrap();
                    assert_eq!(m.counter().count(&p, chat).await.unwrap(), target, "chat={chat}");
                    firsts.insert(p.split(' ').take(4).collect::<Vec<_>>().join(" "));
                }
            }
            assert_eq!(firsts.len(), 20, "no two prompts begin alike");
            let e = m.make(m.min_tokens() - 1, &mut rng).await.unwrap_err();
            assert!(e.contains("too few"), "{e}");
        }
    }

    #[tokio::test]
    async fn words_are_exact_for_word_counting() {
        let m = PromptMaker::new(Counter::Words, false).await.unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let p = m.make(50, &mut rng).await.unwrap();
        assert_eq!(p.split_whitespace().count(), 50);
    }
}
