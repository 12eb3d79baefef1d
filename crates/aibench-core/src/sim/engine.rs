//! The continuous-batching engine: one thread that runs engine steps the way
//! vLLM's scheduler does, in model time.
//!
//! Each step: running sequences that have finished prefill each decode one
//! token; the rest of the step's token budget (`max_num_batched_tokens`) goes
//! to prefill, first to sequences already part-way through their prompt, then
//! to waiting requests admitted FIFO while the batch has room
//! (`max_num_seqs`) and the KV cache has space for their prompt. A step lasts
//! `step_base + per_seq * batch + per_prefill_token * prefill_tokens`. When
//! the KV cache cannot hold one more token for every decoding sequence, the
//! most recently admitted sequence is preempted (its KV freed, it goes back to
//! the front of the queue and recomputes its prompt and output so far), as
//! vLLM's recompute preemption does.
//!
//! With prefix caching on (`prefix.rs`), a request admitted from the queue
//! reuses its longest cached run of whole KV blocks and prefills only the
//! rest; the blocks of its prompt are cached when its prefill completes, and
//! those of its output when it finishes.
//!
//! The thread sleeps to absolute deadlines (sub-millisecond, unlike tokio's
//! timer wheel) and hands each token to the request's HTTP stream through an
//! unbounded channel, so the HTTP side never slows the model clock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::metrics::Metrics;
use super::prefix::{PrefixCache, block_hashes};
use super::profile::Profile;
use super::request::{Event, FinishReason, GenRequest};

pub enum Command {
    Submit(GenRequest),
    Shutdown,
}

struct Seq {
    req: GenRequest,
    generated: u32,
    /// Prompt (and, after a preemption, output) tokens still to prefill.
    prefill_left: u64,
    kv: u64,
    scheduled_at: Option<Instant>,
    first_token_at: Option<Instant>,
    last_token_at: Option<Instant>,
    preemptions: u32,
    prefilled_tokens: u64,
    /// Chained hashes of the full blocks of prompt + output (prefix caching).
    hashes: Vec<u64>,
    /// Cache blocks this sequence holds (not in `kv`).
    held: Vec<u64>,
}

impl Seq {
    /// Prefills as much as `budget` allows, taking it from the budget;
    /// returns the tokens prefilled.
    fn prefill_from(&mut self, budget: &mut u64) -> u64 {
        let chunk = self.prefill_left.min(*budget);
        self.prefill_left -= chunk;
        self.prefilled_tokens += chunk;
        *budget -= chunk;
        chunk
    }

    fn new(req: GenRequest, block: Option<u64>) -> Seq {
        let p = req.prompt_tokens as u64;
        let hashes = block.map(|b| block_hashes(&req.tokens, b as usize)).unwrap_or_default();
        Seq {
            hashes,
            held: Vec::new(),
            req,
            generated: 0,
            prefill_left: p,
            kv: 0,
            scheduled_at: None,
            first_token_at: None,
            last_token_at: None,
            preemptions: 0,
            prefilled_tokens: 0,
        }
    }
}

/// Handle the HTTP side uses to submit work.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
}

impl EngineHandle {
    pub fn submit(&self, req: GenRequest) -> bool {
        self.tx.send(Command::Submit(req)).is_ok()
    }

    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}

pub fn start(profile: Profile, metrics: Arc<Metrics>) -> (EngineHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let join = std::thread::Builder::new()
        .name("sim-engine".into())
        .spawn(move || Engine::new(profile, metrics).run(rx))
        .expect("spawn engine thread");
    (EngineHandle { tx }, join)
}

struct Engine {
    p: Profile,
    m: Arc<Metrics>,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    /// KV tokens in use: sequences' own and the cache blocks they hold.
    kv_used: u64,
    /// `Some` with prefix caching on.
    cache: Option<PrefixCache>,
}

impl Engine {
    fn new(p: Profile, m: Arc<Metrics>) -> Engine {
        let cache = p.enable_prefix_caching.then(|| PrefixCache::new(p.block_size as u64));
        Engine { p, m, waiting: VecDeque::new(), running: Vec::new(), kv_used: 0, cache }
    }

    fn seq(&self, r: GenRequest) -> Seq {
        Seq::new(r, self.cache.as_ref().map(|c| c.block))
    }

    /// Evicts cached blocks nobody holds until `need` more tokens fit with
    /// them counted (or none is left to evict).
    fn make_room(&mut self, need: u64) {
        let cap = self.p.kv_cache_tokens;
        while let Some(c) = self.cache.as_mut() {
            if self.kv_used + c.free_tokens() + need <= cap || !c.evict_one() {
                break;
            }
        }
    }

    /// Gives back what a sequence holds: its own KV, and its references to
    /// cache blocks (those nobody else holds become free, still cached).
    fn release(&mut self, s: &mut Seq) {
        self.kv_used -= s.kv;
        s.kv = 0;
        if let Some(c) = self.cache.as_mut() {
            for h in s.held.drain(..) {
                if c.release(h) {
                    self.kv_used -= c.block;
                }
            }
        }
    }

    /// At the end of prefill: the prompt's full blocks beyond those reused
    /// enter the cache, held by the sequence.
    fn cache_prompt(&mut self, s: &mut Seq) {
        let Some(c) = self.cache.as_mut() else { return };
        let full = (s.req.prompt_tokens as u64 / c.block) as usize;
        for &h in s.hashes.iter().take(full).skip(s.held.len()) {
            if c.insert_held(h) {
                // Its tokens move from the sequence's own KV to the block.
                s.kv -= c.block;
            } else {
                // Computed twice at once: hold the cached copy, drop ours.
                if c.acquire(h) {
                    self.kv_used += c.block;
                }
                s.kv -= c.block;
                self.kv_used -= c.block;
            }
            s.held.push(h);
        }
    }

    /// At the end of a sequence: the full blocks of its output enter the
    /// cache (nobody holds them), then it releases everything.
    fn cache_output_and_release(&mut self, s: &mut Seq) {
        if let Some(c) = self.cache.as_mut() {
            let full = ((s.req.prompt_tokens as u64 + s.generated as u64) / c.block) as usize;
            for &h in s.hashes.iter().take(full).skip(s.held.len()) {
                if s.kv < c.block {
                    break;
                }
                s.kv -= c.block;
                self.kv_used -= c.block;
                c.insert_free(h);
            }
        }
        self.release(s);
    }

    fn run(mut self, rx: mpsc::Receiver<Command>) {
        let mut step_start = Instant::now();
        let mut zero_steps = 0u64;
        loop {
            if self.running.is_empty() && self.waiting.is_empty() {
                self.publish();
                match rx.recv() {
                    Ok(Command::Submit(r)) => {
                        let s = self.seq(r);
                        self.waiting.push_back(s)
                    }
                    Ok(Command::Shutdown) | Err(_) => return self.abort_all(),
                }
                step_start = Instant::now();
            }
            loop {
                match rx.try_recv() {
                    Ok(Command::Submit(r)) => {
                        let s = self.seq(r);
                        self.waiting.push_back(s)
                    }
                    Ok(Command::Shutdown) => return self.abort_all(),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return self.abort_all(),
                }
            }
            self.drop_abandoned();
            let (batch, prefill_tokens, decode_tokens) = self.schedule(step_start);
            if batch == 0 {
                // Nothing fits (cannot happen with validated requests); avoid spinning.
                std::thread::sleep(Duration::from_millis(1));
                step_start = Instant::now();
                continue;
            }
            self.publish();
            let dur = Duration::from_secs_f64(self.p.step_seconds(batch, prefill_tokens));
            let deadline = step_start + dur;
            let now = Instant::now();
            if deadline > now {
                std::thread::sleep(deadline - now);
            } else if dur.is_zero() {
                // Zero-time profile: run steps in bursts, then let the HTTP
                // side run (on one core it shares the CPU with us); bursts
                // let each stream send many tokens per write.
                zero_steps += 1;
                if zero_steps.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            }
            let end = Instant::now();
            self.m.iteration_tokens.observe((prefill_tokens + decode_tokens) as f64);
            self.emit(end);
            // Absolute deadlines: oversleeping one step shortens the next, so
            // the model clock does not drift; after a long stall, restart it.
            step_start =
                if end.saturating_duration_since(deadline) < Duration::from_millis(1) { deadline } else { end };
        }
    }

    /// Decides this step's batch. Returns (sequences, prefill tokens, decode tokens).
    fn schedule(&mut self, now: Instant) -> (usize, u64, u64) {
        // Room for one more KV slot per decoding sequence: evict unheld
        // cache blocks first, then preempt the newest.
        loop {
            let decoding = self.running.iter().filter(|s| s.prefill_left == 0).count() as u64;
            self.make_room(decoding);
            if self.kv_used + decoding <= self.p.kv_cache_tokens || self.running.len() <= 1 {
                break;
            }
            self.preempt_newest();
        }
        let mut budget = self.p.max_num_batched_tokens as u64;
        let decode = self.running.iter().filter(|s| s.prefill_left == 0).count() as u64;
        budget = budget.saturating_sub(decode);
        let mut prefill = 0u64;
        // KV slots this step's tokens will take: one per sequence that emits.
        let mut growth = decode;
        let mut running = std::mem::take(&mut self.running);
        for s in running.iter_mut().filter(|s| s.prefill_left > 0) {
            prefill += s.prefill_from(&mut budget);
            if s.prefill_left == 0 {
                growth += 1;
                self.cache_prompt(s);
            }
        }
        self.running = running;
        while budget > 0 && self.running.len() < self.p.max_num_seqs as usize {
            let Some(front) = self.waiting.front() else { break };
            // Its longest cached prefix in whole blocks, never the whole
            // prompt (vLLM computes at least the last prompt token).
            let (hit_blocks, hit_free) = match &self.cache {
                Some(c) if front.generated == 0 => {
                    let most = ((front.req.prompt_tokens as u64).saturating_sub(1) / c.block) as usize;
                    c.lookup(&front.hashes, most)
                }
                _ => (0, 0),
            };
            let block = self.cache.as_ref().map(|c| c.block).unwrap_or(0);
            let hit = hit_blocks as u64 * block;
            let need = front.prefill_left - hit;
            // Its prompt, plus room for this step's tokens (its own included),
            // so admitting it never forces a preemption in the next step.
            if self.kv_used + hit_free + growth + need + 1 > self.p.kv_cache_tokens {
                break;
            }
            growth += 1;
            let mut s = self.waiting.pop_front().expect("front exists");
            let first_time = s.scheduled_at.is_none();
            if let Some(c) = self.cache.as_mut() {
                for &h in &s.hashes[..hit_blocks] {
                    if c.acquire(h) {
                        self.kv_used += c.block;
                    }
                    s.held.push(h);
                }
                if first_time {
                    self.m.prefix_cache_queries.inc_by(s.req.prompt_tokens as u64);
                    self.m.prefix_cache_hits.inc_by(hit);
                    self.m.prompt_tokens_cached.inc_by(hit);
                }
            }
            if first_time {
                let [compute, cached] = &self.m.prompt_tokens_by_source;
                compute.inc_by(s.req.prompt_tokens as u64 - hit);
                cached.inc_by(hit);
            }
            s.prefill_left -= hit;
            self.make_room(growth + need);
            self.kv_used += need;
            s.kv = need;
            if first_time {
                s.scheduled_at = Some(now);
            }
            prefill += s.prefill_from(&mut budget);
            if s.prefill_left == 0 {
                self.cache_prompt(&mut s);
            }
            self.running.push(s);
        }
        (self.running.len(), prefill, decode)
    }

    fn preempt_newest(&mut self) {
        let Some(mut s) = self.running.pop() else { return };
        self.release(&mut s);
        // Recompute: the prompt and everything generated so far.
        s.prefill_left = s.req.prompt_tokens as u64 + s.generated as u64;
        s.preemptions += 1;
        self.m.preemptions.inc();
        self.waiting.push_front(s);
    }

    /// Sequences whose client went away are aborted before they cost a step.
    fn drop_abandoned(&mut self) {
        let (gone, keep): (Vec<Seq>, Vec<Seq>) =
            std::mem::take(&mut self.running).into_iter().partition(|s| s.req.events.is_closed());
        self.running = keep;
        for mut s in gone {
            self.release(&mut s);
            self.m.finished(FinishReason::Abort).inc();
        }
        let m = self.m.clone();
        self.waiting.retain(|s| {
            let gone = s.req.events.is_closed();
            if gone {
                m.finished(FinishReason::Abort).inc();
            }
            !gone
        });
    }

    /// End of step: every sequence past its prefill produces one token.
    fn emit(&mut self, at: Instant) {
        let running = std::mem::take(&mut self.running);
        let mut keep = Vec::with_capacity(running.len());
        for mut s in running {
            if s.prefill_left > 0 {
                keep.push(s);
                continue;
            }
            s.generated += 1;
            s.kv += 1;
            self.kv_used += 1;
            self.m.generation_tokens.inc();
            match s.first_token_at {
                None => {
                    s.first_token_at = Some(at);
                    self.m.prompt_tokens.inc_by(s.req.prompt_tokens as u64);
                    self.m.ttft.observe(at.duration_since(s.req.arrival).as_secs_f64());
                }
                Some(_) => {
                    if let Some(prev) = s.last_token_at {
                        self.m.itl.observe(at.duration_since(prev).as_secs_f64());
                    }
                }
            }
            s.last_token_at = Some(at);
            let last = s.generated >= s.req.target_tokens;
            if last {
                // Metrics first, so a client that has its last token sees them counted.
                self.cache_output_and_release(&mut s);
                let reason = if s.req.events.is_closed() { FinishReason::Abort } else { s.req.reason };
                self.finish(&s, at, reason);
                let _ = s.req.events.send(Event::Token(Some(s.req.reason)));
            } else if s.req.events.send(Event::Token(None)).is_ok() {
                keep.push(s);
            } else {
                self.release(&mut s);
                self.finish(&s, at, FinishReason::Abort);
            }
        }
        // Order is admission order, so preemption takes the newest from the end.
        self.running = keep;
    }

    fn finish(&self, s: &Seq, at: Instant, reason: FinishReason) {
        let m = &self.m;
        m.finished(reason).inc();
        if reason == FinishReason::Abort {
            return;
        }
        let sched = s.scheduled_at.unwrap_or(s.req.arrival);
        let first = s.first_token_at.unwrap_or(at);
        m.e2e.observe(at.duration_since(s.req.arrival).as_secs_f64());
        m.queue.observe(sched.duration_since(s.req.arrival).as_secs_f64());
        m.prefill.observe(first.duration_since(sched).as_secs_f64());
        m.decode.observe(at.duration_since(first).as_secs_f64());
        m.inference.observe(at.duration_since(sched).as_secs_f64());
        if s.generated > 1 {
            m.tpot.observe(at.duration_since(first).as_secs_f64() / (s.generated - 1) as f64);
        }
        m.req_prompt_tokens.observe(s.req.prompt_tokens as f64);
        m.req_generation_tokens.observe(s.generated as f64);
        m.req_max_tokens.observe(s.req.max_tokens as f64);
        m.req_max_generation_tokens.observe(s.req.max_tokens as f64);
        m.req_n.observe(1.0);
        m.req_preemptions.observe(s.preemptions as f64);
        m.req_prefill_kv_tokens.observe(s.prefilled_tokens as f64);
    }

    fn publish(&self) {
        self.m.running.set(self.running.len() as f64);
        self.m.waiting.set(self.waiting.len() as f64);
        self.m.waiting_capacity.set(self.waiting.len() as f64);
        self.m.kv_usage.set(self.kv_used as f64 / self.p.kv_cache_tokens as f64);
    }

    fn abort_all(&mut self) {
        for s in self.running.drain(..).chain(self.waiting.drain(..)) {
            let _ = s.req.events.send(Event::Aborted);
            self.m.finished(FinishReason::Abort).inc();
        }
        self.kv_used = 0;
        if let Some(c) = self.cache.as_mut() {
            c.clear();
        }
        self.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        let mut p = Profile::load("opt-125m-cpu").unwrap();
        p.step_base_ms = 2.0;
        p.per_seq_ms = 0.0;
        p.per_prefill_token_ms = 0.0;
        p
    }

    fn submit(h: &EngineHandle, prompt: u32, out: u32) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
        submit_tokens(h, Vec::new(), prompt, out)
    }

    fn submit_tokens(
        h: &EngineHandle,
        tokens: Vec<u32>,
        prompt: u32,
        out: u32,
    ) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        assert!(h.submit(GenRequest {
            arrival: Instant::now(),
            tokens,
            prompt_tokens: prompt,
            target_tokens: out,
            reason: FinishReason::Length,
            max_tokens: out,
            events: tx,
        }));
        rx
    }

    fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> Vec<(Instant, Event)> {
        let mut out = Vec::new();
        while let Some(e) = rx.blocking_recv() {
            out.push((Instant::now(), e));
            if matches!(e, Event::Token(Some(_)) | Event::Aborted) {
                break;
            }
        }
        out
    }

    #[test]
    fn tokens_arrive_one_per_step() {
        let m = Arc::new(Metrics::new("m", 4096));
        let (h, _j) = start(profile(), m.clone());
        let mut rx = submit(&h, 10, 20);
        let t0 = Instant::now();
        let ev = drain(&mut rx);
        assert_eq!(ev.len(), 20);
        assert_eq!(ev.last().unwrap().1, Event::Token(Some(FinishReason::Length)));
        // 1 prefill step that also yields the first token, then 19 decode steps of 2 ms.
        let total = ev.last().unwrap().0.duration_since(t0).as_secs_f64();
        assert!((0.038..0.060).contains(&total), "took {total}");
        assert_eq!(m.generation_tokens.get(), 20);
        assert_eq!(m.prompt_tokens.get(), 10);
        h.shutdown();
    }

    #[test]
    fn batch_limit_queues_and_kv_limit_preempts() {
        let mut p = profile();
        p.max_num_seqs = 2;
        let m = Arc::new(Metrics::new("m", 4096));
        let (h, _j) = start(p, m.clone());
        let mut rxs: Vec<_> = (0..3).map(|_| submit(&h, 5, 10)).collect();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(m.waiting.get(), 1.0);
        assert_eq!(m.running.get(), 2.0);
        for rx in rxs.iter_mut() {
            assert_eq!(drain(rx).len(), 10);
        }
        h.shutdown();

        let mut p = profile();
        p.kv_cache_tokens = 30; // two sequences of 5 + 10 tokens cannot both finish
        let m = Arc::new(Metrics::new("m", 4096));
        let (h, _j) = start(p, m.clone());
        let mut rxs: Vec<_> = (0..2).map(|_| submit(&h, 5, 15)).collect();
        for rx in rxs.iter_mut() {
            assert_eq!(drain(rx).len(), 15);
        }
        assert!(m.preemptions.get() >= 1, "expected a preemption");
        assert_eq!(m.generation_tokens.get(), 30);
        h.shutdown();
    }

    #[test]
    fn cached_blocks_are_reused_then_evicted_lru_when_the_kv_budget_needs_them() {
        let mut p = profile();
        p.step_base_ms = 0.1;
        p.block_size = 16;
        p.kv_cache_tokens = 100;
        let m = Arc::new(Metrics::new("m", 4096));
        let (h, _j) = start(p, m.clone());
        // A sequence of 40 prompt + 8 output tokens: 3 full blocks cached.
        let seq = |base: u32| (base..base + 48).collect::<Vec<u32>>();
        let run = |tokens: Vec<u32>| {
            let mut rx = submit_tokens(&h, tokens, 40, 8);
            assert_eq!(drain(&mut rx).len(), 8);
        };
        run(seq(0));
        assert_eq!(m.prefix_cache_hits.get(), 0);
        run(seq(0));
        // Its 40-token prompt reuses 2 whole blocks (32 tokens; at most 39).
        assert_eq!(m.prefix_cache_hits.get(), 32);
        assert_eq!(m.prefix_cache_queries.get(), 80);
        // Two unrelated sequences need the room: the first one's blocks go.
        run(seq(1000));
        run(seq(2000));
        run(seq(0));
        assert_eq!(m.prefix_cache_hits.get(), 32, "evicted, so nothing reused");
        // The gauge is set by the step after the last token went out.
        let t0 = std::time::Instant::now();
        while m.kv_usage.get() != 0.0 && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(m.kv_usage.get(), 0.0, "nothing held once all finished");
        h.shutdown();
    }

    #[test]
    fn shutdown_aborts_in_flight() {
        let m = Arc::new(Metrics::new("m", 4096));
        let (h, j) = start(profile(), m.clone());
        let mut rx = submit(&h, 5, 1000);
        std::thread::sleep(Duration::from_millis(10));
        h.shutdown();
        let ev = drain(&mut rx);
        assert_eq!(ev.last().unwrap().1, Event::Aborted);
        j.join().unwrap();
        assert_eq!(m.request_success.with_label_values(&["abort"]).get(), 1);
    }
}
