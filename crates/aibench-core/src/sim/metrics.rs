//! The simulator's `/metrics`: vLLM's v1 metric names, label sets and
//! histogram buckets (as in vLLM 0.32's scrape in `shared/fixtures`), in the
//! Prometheus text format written by the `prometheus` crate.

use prometheus::{Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use super::request::FinishReason;

pub const FINISH_REASONS: &[&str] = &["stop", "length", "abort", "error", "repetition"];

/// vLLM's request-latency buckets (e2e, queue, prefill, decode, inference).
const REQUEST_LATENCY: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0,
    1920.0, 7680.0,
];
const TTFT: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
    160.0, 640.0, 2560.0,
];
const ITL: &[f64] =
    &[0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
const ITERATION_TOKENS: &[f64] =
    &[1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0];
const N_PARAM: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0];
const PREEMPTIONS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0];

/// vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to max_model_len.
pub fn token_buckets(max_model_len: u32) -> Vec<f64> {
    let mut out = Vec::new();
    let mut mant = 1u64;
    loop {
        for m in [1u64, 2, 5] {
            let v = m * mant;
            if v > max_model_len as u64 {
                return out;
            }
            out.push(v as f64);
        }
        mant *= 10;
    }
}

pub struct Metrics {
    pub registry: Registry,
    pub running: Gauge,
    pub waiting: Gauge,
    pub waiting_by_reason: GaugeVec,
    /// `waiting_by_reason{reason="capacity"}`, looked up once.
    pub waiting_capacity: Gauge,
    pub kv_usage: Gauge,
    pub prompt_tokens: IntCounter,
    pub generation_tokens: IntCounter,
    pub request_success: IntCounterVec,
    /// `request_success` for stop, length and abort (see [`Metrics::finished`]).
    success_by_reason: [IntCounter; 3],
    pub preemptions: IntCounter,
    pub prefix_cache_queries: IntCounter,
    pub prefix_cache_hits: IntCounter,
    pub prompt_tokens_cached: IntCounter,
    /// `vllm:prompt_tokens_by_source_total`: local_compute, local_cache_hit.
    pub prompt_tokens_by_source: [IntCounter; 2],
    pub ttft: Histogram,
    pub itl: Histogram,
    pub tpot: Histogram,
    pub e2e: Histogram,
    pub queue: Histogram,
    pub inference: Histogram,
    pub prefill: Histogram,
    pub decode: Histogram,
    pub req_prompt_tokens: Histogram,
    pub req_generation_tokens: Histogram,
    pub req_max_tokens: Histogram,
    pub req_max_generation_tokens: Histogram,
    pub req_n: Histogram,
    pub req_preemptions: Histogram,
    pub req_prefill_kv_tokens: Histogram,
    pub iteration_tokens: Histogram,
}

struct Builder {
    registry: Registry,
    model: String,
}

impl Builder {
    fn opts(&self, name: &str, help: &str) -> Opts {
        Opts::new(name, help).const_label("engine", "0").const_label("model_name", self.model.clone())
    }

    fn gauge(&self, name: &str, help: &str) -> Gauge {
        let g = Gauge::with_opts(self.opts(name, help)).expect("valid gauge");
        self.registry.register(Box::new(g.clone())).expect("unique gauge");
        g
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        let c = IntCounter::with_opts(self.opts(name, help)).expect("valid counter");
        self.registry.register(Box::new(c.clone())).expect("unique counter");
        c
    }

    fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        let o = HistogramOpts::new(name, help)
            .const_label("engine", "0")
            .const_label("model_name", self.model.clone())
            .buckets(buckets.to_vec());
        let h = Histogram::with_opts(o).expect("valid histogram");
        self.registry.register(Box::new(h.clone())).expect("unique histogram");
        h
    }
}

impl Metrics {
    pub fn new(model: &str, max_model_len: u32) -> Metrics {
        let b = Builder { registry: Registry::new(), model: model.to_string() };
        let tokens = token_buckets(max_model_len);
        let waiting_by_reason = GaugeVec::new(
            b.opts(
                "vllm:num_requests_waiting_by_reason",
                "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for scheduling capacity; 'deferred' = deferred by transient constraints (LoRA budget, KV transfer, blocked status). Sum of all reasons equals vllm:num_requests_waiting.",
            ),
            &["reason"],
        )
        .expect("valid gauge vec");
        b.registry.register(Box::new(waiting_by_reason.clone())).expect("unique");
        for r in ["capacity", "deferred"] {
            waiting_by_reason.with_label_values(&[r]).set(0.0);
        }
        let request_success = IntCounterVec::new(
            b.opts("vllm:request_success_total", "Count of successfully processed requests."),
            &["finished_reason"],
        )
        .expect("valid counter vec");
        b.registry.register(Box::new(request_success.clone())).expect("unique");
        for r in FINISH_REASONS {
            request_success.with_label_values(&[r]).reset();
        }
        let by_source = IntCounterVec::new(
            b.opts("vllm:prompt_tokens_by_source_total", "Number of prompt tokens by source."),
            &["source"],
        )
        .expect("valid counter vec");
        b.registry.register(Box::new(by_source.clone())).expect("unique");
        by_source.with_label_values(&["external_kv_transfer"]).reset();
        let prompt_tokens_by_source = ["local_compute", "local_cache_hit"].map(|s| by_source.with_label_values(&[s]));
        let waiting_capacity = waiting_by_reason.with_label_values(&["capacity"]);
        let success_by_reason = [FinishReason::Stop, FinishReason::Length, FinishReason::Abort]
            .map(|r| request_success.with_label_values(&[r.as_str()]));
        let m = Metrics {
            running: b.gauge("vllm:num_requests_running", "Number of requests in model execution batches."),
            waiting: b.gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed."),
            waiting_by_reason,
            waiting_capacity,
            kv_usage: b.gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."),
            prompt_tokens: b.counter("vllm:prompt_tokens_total", "Number of prefill tokens processed."),
            generation_tokens: b.counter("vllm:generation_tokens_total", "Number of generation tokens processed."),
            request_success,
            success_by_reason,
            preemptions: b.counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine."),
            prefix_cache_queries: b.counter(
                "vllm:prefix_cache_queries_total",
                "Prefix cache queries, in terms of number of queried tokens.",
            ),
            prefix_cache_hits: b
                .counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens."),
            prompt_tokens_cached: b
                .counter("vllm:prompt_tokens_cached_total", "Number of cached prompt tokens (local + external)."),
            prompt_tokens_by_source,
            ttft: b.histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT),
            itl: b.histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", ITL),
            tpot: b.histogram(
                "vllm:request_time_per_output_token_seconds",
                "Histogram of time_per_output_token_seconds per request.",
                ITL,
            ),
            e2e: b.histogram(
                "vllm:e2e_request_latency_seconds",
                "Histogram of e2e request latency in seconds.",
                REQUEST_LATENCY,
            ),
            queue: b.histogram(
                "vllm:request_queue_time_seconds",
                "Histogram of time spent in WAITING phase for request.",
                REQUEST_LATENCY,
            ),
            inference: b.histogram(
                "vllm:request_inference_time_seconds",
                "Histogram of time spent in RUNNING phase for request.",
                REQUEST_LATENCY,
            ),
            prefill: b.histogram(
                "vllm:request_prefill_time_seconds",
                "Histogram of time spent in PREFILL phase for request.",
                REQUEST_LATENCY,
            ),
            decode: b.histogram(
                "vllm:request_decode_time_seconds",
                "Histogram of time spent in DECODE phase for request.",
                REQUEST_LATENCY,
            ),
            req_prompt_tokens: b.histogram(
                "vllm:request_prompt_tokens",
                "Number of prefill tokens processed.",
                &tokens,
            ),
            req_generation_tokens: b.histogram(
                "vllm:request_generation_tokens",
                "Number of generation tokens processed.",
                &tokens,
            ),
            req_max_tokens: b.histogram(
                "vllm:request_params_max_tokens",
                "Histogram of the max_tokens request parameter.",
                &tokens,
            ),
            req_max_generation_tokens: b.histogram(
                "vllm:request_max_num_generation_tokens",
                "Histogram of maximum number of requested generation tokens.",
                &tokens,
            ),
            req_n: b.histogram("vllm:request_params_n", "Histogram of the n request parameter.", N_PARAM),
            req_preemptions: b.histogram(
                "vllm:request_num_preemptions",
                "Number of preemptions per request.",
                PREEMPTIONS,
            ),
            req_prefill_kv_tokens: b.histogram(
                "vllm:request_prefill_kv_computed_tokens",
                "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
                &tokens,
            ),
            iteration_tokens: b.histogram(
                "vllm:iteration_tokens_total",
                "Histogram of number of tokens per engine_step.",
                ITERATION_TOKENS,
            ),
            registry: b.registry,
        };
        // Like vLLM's server (it runs the prometheus_client process collector).
        let pc = prometheus::process_collector::ProcessCollector::for_self();
        let _ = m.registry.register(Box::new(pc));
        m
    }

    /// The `request_success` counter of one finish reason.
    pub fn finished(&self, reason: FinishReason) -> &IntCounter {
        let [stop, length, abort] = &self.success_by_reason;
        match reason {
            FinishReason::Stop => stop,
            FinishReason::Length => length,
            FinishReason::Abort => abort,
        }
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = Vec::with_capacity(32 * 1024);
        let enc = prometheus::TextEncoder::new();
        let _ = enc.encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_buckets_follow_vllm() {
        assert_eq!(token_buckets(2048), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]);
        assert_eq!(token_buckets(5), vec![1.0, 2.0, 5.0]);
    }
}
