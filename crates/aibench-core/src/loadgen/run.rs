//! Running a benchmark: closed-loop users or an open-loop dispatcher, the
//! per-request exchange and its classification, progress, and the report.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc, watch};

use super::dataset;
use super::http1::{BodySink, Conn, Endpoint, ErrorClass, Failure, format_request};
use super::progress::Progress;
use super::report::{Backoff, ClientInfo, Facts, Report, StoppedEarly, TargetInfo};
use super::schedule::Schedule;
use super::spec::{Api, BenchSpec, ClosedLoop, OpenLoop, Slo, Workload};
use super::sse::{LineSplitter, SseParser, Tokens, is_ndjson};
use super::stats::{self, Record, Shard};

/// How the caller steers a run.
pub struct Control {
    /// Becomes `Some(signal name)` to stop issuing (Ctrl-C, SIGTERM);
    /// in-flight requests get a grace period and the result is marked
    /// interrupted by that signal.
    pub stop: watch::Receiver<Option<&'static str>>,
    pub progress: Option<mpsc::UnboundedSender<Progress>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spec is wrong: the caller raises.
    #[error("{0}")]
    Spec(String),
    /// The target could not be used (e.g. model discovery failed): `nil, err`.
    #[error("{message}")]
    Unavailable { kind: &'static str, message: String },
}

const SHARDS: usize = 16;
const POOL: usize = 1024;
const GRACE: Duration = Duration::from_secs(3);
/// Open files beyond the connections: stdio, the log, the runtime's own.
const FD_MARGIN: u64 = 64;
/// A refused user's first and longest pause before its next request.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// No time recorded yet (in the `*_us` fields of `Ctx`).
const NONE: u64 = u64::MAX;

/// Why the run stops before its workload ends.
#[derive(Debug, Clone, Copy)]
enum Halt {
    Signal(&'static str),
    /// Nothing succeeded and no request was answered since this instant.
    Unreachable(Instant),
}

/// One request's bytes, per target.
enum Requests {
    /// Formatted once (the `http` API without a template, and every LLM body).
    Fixed(Vec<Vec<Vec<u8>>>),
    /// `{{seq}}` in the body: formatted per request.
    Template { method: String, path: Vec<String>, headers: Vec<(String, String)>, body: String },
}

struct Ctx {
    api: Api,
    stream: bool,
    llm: bool,
    /// `ignore_eos` was sent: an output shorter than asked was cut short.
    ignore_eos: bool,
    endpoints: Vec<Endpoint>,
    requests: Requests,
    meta: Vec<(u64, u64)>,
    shards: Vec<Mutex<Shard>>,
    seq: AtomicU64,
    rr: AtomicU64,
    in_flight: AtomicI64,
    warmup_excluded: AtomicU64,
    warmup_requests: u64,
    start: Instant,
    origin: Instant,
    timeout: Duration,
    slo: Slo,
    log: Option<mpsc::UnboundedSender<Option<String>>>,
    pools: Vec<Mutex<Vec<Conn>>>,
    stop: AtomicBool,
    /// Wakes users sleeping (ramp-up, think time) when the run stops.
    stopped: Notify,
    abort: watch::Receiver<bool>,
    /// Per second since the origin: (sum of in-flight samples, samples).
    in_flight_series: Mutex<Vec<(f64, u32)>>,
    // Open loop bookkeeping.
    outstanding: AtomicU64,
    dispatch_done: AtomicBool,
    all_done: Notify,
    // Reachability, in microseconds since `start`: the last success, and the
    // first failure without an answer since the server last answered.
    last_success_us: AtomicU64,
    first_unanswered_us: AtomicU64,
    // Closed-loop backoff after refused requests.
    backoff_us: AtomicU64,
    backoffs: AtomicU64,
}

impl Ctx {
    fn since_start_us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_micros() as u64
    }

    /// Notes how a request ended for the unreachable-server check.
    fn note_reachability(&self, answered: bool, ok: bool, unanswered_failure: bool, at: Instant) {
        let t = self.since_start_us(at);
        if ok {
            self.last_success_us.fetch_max(t, Ordering::Relaxed);
        }
        if answered {
            self.first_unanswered_us.store(NONE, Ordering::Relaxed);
        } else if unanswered_failure {
            let _ = self.first_unanswered_us.compare_exchange(NONE, t, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The instant since when the server has been unreachable, once that has
    /// lasted `after`: nothing succeeded and every attempt failed unanswered.
    fn unreachable_since(&self, after: Duration) -> Option<Instant> {
        let first = self.first_unanswered_us.load(Ordering::Relaxed);
        if first == NONE {
            return None;
        }
        let now = self.since_start_us(Instant::now());
        let after = after.as_micros() as u64;
        let last_ok = self.last_success_us.load(Ordering::Relaxed);
        (now.saturating_sub(first) >= after && now.saturating_sub(last_ok) >= after)
            .then(|| self.start + Duration::from_micros(first))
    }
}

/// Per-task buffers, reused between requests.
#[derive(Default)]
struct Scratch {
    tokens: Tokens,
    sse: SseParser,
    lines: LineSplitter,
    body: Vec<u8>,
    err_body: Vec<u8>,
    status: u16,
}

impl Scratch {
    fn reset(&mut self) {
        self.tokens.reset();
        self.sse.reset();
        self.lines.reset();
        self.body.clear();
        self.err_body.clear();
        self.status = 0;
    }
}

struct Sink<'a> {
    s: &'a mut Scratch,
    api: Api,
    stream: bool,
    llm: bool,
}

impl BodySink for Sink<'_> {
    fn head(&mut self, status: u16, _at: Instant) {
        self.s.status = status;
    }

    fn data(&mut self, bytes: &[u8], at: Instant) {
        let s = &mut *self.s;
        if !(200..300).contains(&s.status) {
            let room = 512usize.saturating_sub(s.err_body.len());
            s.err_body.extend_from_slice(&bytes[..bytes.len().min(room)]);
        } else if self.llm && self.stream {
            let tokens = &mut s.tokens;
            if is_ndjson(self.api) {
                s.lines.feed(bytes, &mut |l| tokens.ollama_line(l, Some(at)));
            } else {
                s.sse.feed(bytes, &mut |d| tokens.openai_event(d, at));
            }
        } else if self.llm {
            s.body.extend_from_slice(bytes);
        }
    }
}

pub(crate) fn set_timer_slack() {
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's sleep rounding.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0);
    }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    }
}

fn peak_rss_mb() -> f64 {
    // SAFETY: as above.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u.ru_maxrss as f64 / 1024.0
    }
}

/// Asks the server which model it serves (when the spec does not say).
async fn discover_model(api: Api, ep: &Endpoint) -> Result<String, RunError> {
    let path = if matches!(api, Api::OllamaGenerate | Api::OllamaChat) { "/api/tags" } else { "/v1/models" };
    let req = format_request("GET", path, ep, &[], b"");
    let unavailable = |kind, m: String| RunError::Unavailable { kind, message: m };
    let url = format!("http://{}{path}", ep.authority);
    let mut conn = Conn::connect(ep).await.map_err(|f| {
        unavailable("connect", format!("target.model not given and {url} is unreachable: {}", f.message))
    })?;
    let mut s = Scratch::default();
    let mut sink = Sink { s: &mut s, api: Api::OpenaiCompletions, stream: false, llm: true };
    let fut = conn.exchange(&req, &mut sink);
    let res = tokio::time::timeout(Duration::from_secs(30), fut).await;
    match res {
        Err(_) => return Err(unavailable("timeout", format!("target.model not given and {url} did not answer"))),
        Ok(Err((f, _))) => {
            return Err(unavailable("connect", format!("target.model not given and {url} failed: {}", f.message)));
        }
        Ok(Ok(_)) => {}
    }
    if s.status != 200 {
        return Err(unavailable("http", format!("target.model not given and {url} answered HTTP {}", s.status)));
    }
    let v: serde_json::Value = serde_json::from_slice(&s.body).unwrap_or_default();
    let name = v["data"][0]["id"].as_str().or_else(|| v["models"][0]["name"].as_str());
    name.map(str::to_string).ok_or_else(|| {
        unavailable("http", format!("target.model not given and {url} lists no model; set target.model"))
    })
}

fn target_path(spec: &BenchSpec, ep: &Endpoint) -> String {
    if let Some(p) = &spec.target.path {
        return p.clone();
    }
    if ep.path != "/" && !ep.path.is_empty() {
        return ep.path.clone();
    }
    spec.target.api.default_path().to_string()
}

/// Runs a benchmark to completion (or until stopped) and reports.
pub async fn run(mut spec: BenchSpec, control: Control) -> Result<Report, RunError> {
    spec.validate().map_err(RunError::Spec)?;
    let urls = spec.target.url.list();
    let endpoints: Vec<Endpoint> =
        urls.iter().map(|u| Endpoint::parse(u)).collect::<Result<_, _>>().map_err(RunError::Spec)?;
    check_open_files(&spec.workload, endpoints.len())?;
    let api = spec.target.api;
    let llm = api.is_llm();
    if llm && spec.target.model.is_none() {
        spec.target.model = Some(discover_model(api, &endpoints[0]).await?);
    }
    let expected = match &spec.workload {
        Workload::ClosedLoop(ClosedLoop { total_requests: Some(n), .. }) => Some(*n),
        Workload::ClosedLoop(ClosedLoop { users, requests_per_user: Some(n), .. }) => Some(users * n),
        Workload::OpenLoop(OpenLoop { total_requests: Some(n), .. }) => Some(*n),
        _ => None,
    };
    let pool = expected.map(|n| n as usize).unwrap_or(POOL).clamp(1, POOL);
    let mut headers: Vec<(String, String)> = spec.target.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let (requests, meta) = if llm {
        let prepared = dataset::prepare(&spec, spec.target.model.as_deref(), pool).map_err(RunError::Spec)?;
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        let per_target = endpoints
            .iter()
            .map(|ep| {
                let path = target_path(&spec, ep);
                prepared.iter().map(|p| format_request("POST", &path, ep, &headers, &p.body)).collect()
            })
            .collect();
        (Requests::Fixed(per_target), prepared.iter().map(|p| (p.prompt_tokens, p.output_tokens)).collect())
    } else {
        let body = spec.target.body.clone().unwrap_or_default();
        let method =
            spec.target.method.clone().unwrap_or_else(|| if body.is_empty() { "GET".into() } else { "POST".into() });
        let paths: Vec<String> = endpoints.iter().map(|ep| target_path(&spec, ep)).collect();
        if body.contains("{{seq}}") {
            (Requests::Template { method, path: paths, headers, body }, vec![(0, 0)])
        } else {
            let per_target = endpoints
                .iter()
                .zip(&paths)
                .map(|(ep, p)| vec![format_request(&method, p, ep, &headers, body.as_bytes())])
                .collect();
            (Requests::Fixed(per_target), vec![(0, 0)])
        }
    };

    let log = match &spec.per_request_log {
        Some(path) => Some(start_log_writer(path).map_err(RunError::Spec)?),
        None => None,
    };
    let (warmup_s, warmup_requests) = spec.workload.warmup();
    let start = Instant::now();
    let start_unix = crate::clock::now();
    let cpu0 = cpu_seconds();
    let (abort_tx, abort_rx) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        api,
        stream: spec.target.stream,
        llm,
        ignore_eos: spec.target.ignore_eos && matches!(api, Api::OpenaiCompletions | Api::OpenaiChat),
        pools: endpoints.iter().map(|_| Mutex::new(Vec::new())).collect(),
        endpoints,
        requests,
        meta,
        shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        seq: AtomicU64::new(0),
        rr: AtomicU64::new(0),
        in_flight: AtomicI64::new(0),
        warmup_excluded: AtomicU64::new(0),
        warmup_requests,
        start,
        origin: start + Duration::from_secs_f64(warmup_s),
        timeout: Duration::from_secs_f64(spec.target.timeout_s),
        slo: spec.slo.clone(),
        log: log.as_ref().map(|(tx, _)| tx.clone()),
        stop: AtomicBool::new(false),
        stopped: Notify::new(),
        abort: abort_rx,
        in_flight_series: Mutex::new(Vec::new()),
        outstanding: AtomicU64::new(0),
        dispatch_done: AtomicBool::new(false),
        all_done: Notify::new(),
        last_success_us: AtomicU64::new(0),
        first_unanswered_us: AtomicU64::new(NONE),
        backoff_us: AtomicU64::new(0),
        backoffs: AtomicU64::new(0),
    });

    let (halt_tx, mut halt_rx) = watch::channel(None::<Halt>);
    let ticker = tokio::spawn(tick(ctx.clone(), control.progress.clone()));
    let sampler = tokio::spawn(sample_loop(ctx.clone(), spec.workload.unreachable_after(), halt_tx.clone()));
    let mut stop = control.stop.clone();
    let forward = tokio::spawn(async move {
        if let Ok(sig) = stop.wait_for(|s| s.is_some()).await
            && let Some(name) = *sig
        {
            let _ = halt_tx.send(Some(Halt::Signal(name)));
        }
    });
    let work = drive(ctx.clone(), &spec.workload);
    tokio::pin!(work);
    let halt = tokio::select! {
        _ = &mut work => None,
        h = halt_rx.wait_for(|h| h.is_some()) => h.ok().and_then(|h| *h),
    };
    if halt.is_some() {
        ctx.stop.store(true, Ordering::SeqCst);
        ctx.stopped.notify_waiters();
        ctx.all_done.notify_waiters();
        if tokio::time::timeout(GRACE, &mut work).await.is_err() {
            let _ = abort_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut work).await;
        }
    }
    ticker.abort();
    sampler.abort();
    forward.abort();
    let total = merge_shards(&ctx);
    let report = finish(&ctx, &spec, &total, halt, (start, start_unix), cpu0);
    if let Some((tx, writer)) = log {
        // Every request has finished: close the log and wait for the flush.
        let _ = tx.send(None);
        let _ = writer.await;
    }
    Ok(report)
}

fn merge_shards(ctx: &Ctx) -> Shard {
    let mut total = Shard::default();
    for s in &ctx.shards {
        total.merge(&s.lock().unwrap_or_else(|e| e.into_inner()));
    }
    total
}

/// Refuses a run whose connections cannot fit under the open-file limit
/// (raised to the hard limit first): it would only collect "Too many open
/// files" errors.
fn check_open_files(w: &Workload, targets: usize) -> Result<(), RunError> {
    let (soft, hard) = crate::procs::raise_open_files_limit();
    let Some((field, conns)) = w.connections(targets) else { return Ok(()) };
    let need = conns.saturating_add(FD_MARGIN);
    if need <= soft {
        return Ok(());
    }
    Err(RunError::Spec(format!(
        "{field}: {conns} connections need about {need} open files, but this process may open only {soft} \
         (hard limit {hard}); raise the limit before running (`ulimit -n {need}`, or ask the system's \
         administrators to raise the hard limit) or use fewer connections"
    )))
}

/// What `halt` says about how the run ended: (interrupted by, stopped early).
fn halt_facts(halt: Option<Halt>, start: (Instant, f64)) -> (Option<String>, Option<StoppedEarly>) {
    match halt {
        None => (None, None),
        Some(Halt::Signal(name)) => (Some(name.to_string()), None),
        Some(Halt::Unreachable(since)) => {
            let since_unix = start.1 + since.saturating_duration_since(start.0).as_secs_f64();
            let since_iso = crate::clock::format_iso(since_unix).unwrap_or_default();
            let stopped = StoppedEarly {
                reason: "unreachable".into(),
                message: format!(
                    "server unreachable since {since_iso}: no request got an answer since then, so the run \
                     stopped early (keep_going = true, or --keep-going, runs on regardless)"
                ),
                since: since_iso,
                since_unix,
            };
            (None, Some(stopped))
        }
    }
}

fn finish(
    ctx: &Ctx,
    spec: &BenchSpec,
    total: &Shard,
    halt: Option<Halt>,
    (start, start_unix): (Instant, f64),
    cpu0: f64,
) -> Report {
    let (interrupted_by, stopped_early) = halt_facts(halt, (start, start_unix));
    let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let wall = ctx.start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let in_flight: Vec<f64> = ctx
        .in_flight_series
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(sum, n)| if *n > 0 { sum / *n as f64 } else { 0.0 })
        .collect();
    let (requested_rate, closed_loop) = match &spec.workload {
        Workload::OpenLoop(w) => (Some(w.rate), None),
        Workload::ClosedLoop(w) => (None, Some((w.users, w.think_time_ms))),
    };
    let to_json = |v: &dyn erased::Ser| v.json();
    Report::build(
        total,
        Facts {
            label: spec.label.clone(),
            started_unix: start_unix,
            finished_unix: start_unix + wall,
            origin: ctx.origin,
            origin_unix: start_unix + ctx.origin.saturating_duration_since(ctx.start).as_secs_f64(),
            interrupted_by,
            stopped_early,
            backoff: Backoff {
                count: ctx.backoffs.load(Ordering::Relaxed),
                total_s: ctx.backoff_us.load(Ordering::Relaxed) as f64 / 1e6,
            },
            target: TargetInfo {
                urls: spec.target.url.list(),
                api: spec.target.api.name().to_string(),
                model: spec.target.model.clone(),
                stream: spec.target.stream,
            },
            workload: to_json(&spec.workload),
            dataset: to_json(&spec.dataset),
            slo: to_json(&spec.slo),
            slo_set: !spec.slo.is_empty(),
            warmup_excluded: ctx.warmup_excluded.load(Ordering::Relaxed),
            requested_rate,
            closed_loop,
            in_flight,
            window_tail_s: closed_loop.map(|(_, think_ms)| think_ms / 1000.0).unwrap_or(0.0),
            client: ClientInfo {
                host: crate::util::hostname(),
                aibench_version: env!("CARGO_PKG_VERSION").into(),
                cpu_s: cpu,
                cpu_util: if wall > 0.0 { cpu / (wall * cores as f64) } else { 0.0 },
                cores,
                peak_rss_mb: peak_rss_mb(),
            },
        },
    )
}

/// Serialisation of spec parts into the report, without naming each type.
mod erased {
    pub trait Ser {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or_default()
        }
    }
}

fn sample_in_flight(ctx: &Ctx) {
    let now = Instant::now();
    if now < ctx.origin {
        return;
    }
    let sec = now.duration_since(ctx.origin).as_secs() as usize;
    let mut s = ctx.in_flight_series.lock().unwrap_or_else(|e| e.into_inner());
    if s.len() <= sec {
        s.resize(sec + 1, (0.0, 0));
    }
    s[sec].0 += ctx.in_flight.load(Ordering::Relaxed).max(0) as f64;
    s[sec].1 += 1;
}

/// Samples the number of requests in flight 20 times a second (the series
/// holds each second's mean, not one instant), and halts the run once the
/// server has been unreachable for `unreachable_after` seconds.
async fn sample_loop(ctx: Arc<Ctx>, unreachable_after: Option<f64>, halt: watch::Sender<Option<Halt>>) {
    let mut iv = tokio::time::interval(Duration::from_millis(50));
    let after = unreachable_after.map(Duration::from_secs_f64);
    loop {
        iv.tick().await;
        sample_in_flight(&ctx);
        if halt.borrow().is_none()
            && let Some(since) = after.and_then(|a| ctx.unreachable_since(a))
        {
            let _ = halt.send(Some(Halt::Unreachable(since)));
        }
    }
}

async fn tick(ctx: Arc<Ctx>, progress: Option<mpsc::UnboundedSender<Progress>>) {
    let Some(tx) = progress else { return };
    let first = tokio::time::Instant::from_std(ctx.start + Duration::from_secs(1));
    let mut iv = tokio::time::interval_at(first, Duration::from_secs(1));
    let (mut last_done, mut last_tokens) = (0u64, 0u64);
    // Summed over the shards each second; reused.
    let (mut ttft, mut latency) = (stats::new_hist(), stats::new_hist());
    let p50_ms = |h: &hdrhistogram::Histogram<u64>| (!h.is_empty()).then(|| h.value_at_quantile(0.5) as f64 / 1000.0);
    loop {
        iv.tick().await;
        ttft.reset();
        latency.reset();
        let (mut successes, mut failures, mut output_tokens) = (0u64, 0u64, 0u64);
        for s in &ctx.shards {
            let g = s.lock().unwrap_or_else(|e| e.into_inner());
            successes += g.successes;
            failures += g.failures;
            output_tokens += g.output_tokens;
            let _ = ttft.add(&g.h.by_name[stats::TTFT]);
            let _ = latency.add(&g.h.by_name[stats::LATENCY]);
        }
        let done = successes + failures;
        let p = Progress {
            elapsed_s: ctx.start.elapsed().as_secs_f64(),
            completed: successes,
            errors: failures,
            in_flight: ctx.in_flight.load(Ordering::Relaxed),
            req_per_s: done.saturating_sub(last_done) as f64,
            output_tokens_per_s: output_tokens.saturating_sub(last_tokens) as f64,
            p50_ttft_ms: p50_ms(&ttft),
            p50_latency_ms: p50_ms(&latency),
        };
        last_done = done;
        last_tokens = output_tokens;
        if tx.send(p).is_err() {
            return;
        }
    }
}

async fn drive(ctx: Arc<Ctx>, w: &Workload) {
    match w {
        Workload::ClosedLoop(ClosedLoop {
            users,
            think_time_ms,
            requests_per_user,
            total_requests,
            duration_s,
            ramp_up_s,
            warmup_s,
            ..
        }) => {
            let deadline = duration_s.map(|d| ctx.start + Duration::from_secs_f64(d + warmup_s));
            let think = Duration::from_secs_f64(think_time_ms / 1000.0);
            let timer = Arc::new(super::timer::PreciseTimer::start());
            let mut set = tokio::task::JoinSet::new();
            for u in 0..*users {
                let delay = if *users > 1 {
                    Duration::from_secs_f64(ramp_up_s * u as f64 / *users as f64)
                } else {
                    Duration::ZERO
                };
                set.spawn(user(
                    ctx.clone(),
                    timer.clone(),
                    u,
                    deadline,
                    (*requests_per_user, *total_requests),
                    think,
                    delay,
                ));
            }
            while set.join_next().await.is_some() {}
        }
        Workload::OpenLoop(OpenLoop {
            rate,
            arrival,
            burstiness,
            max_concurrency,
            duration_s,
            total_requests,
            seed,
            warmup_s,
            ..
        }) => {
            let schedule = match Schedule::new(
                *rate,
                *arrival,
                *burstiness,
                *seed,
                *total_requests,
                duration_s.map(|d| d + warmup_s),
            ) {
                Ok(s) => s,
                Err(_) => return,
            };
            let sem = max_concurrency.map(|n| Arc::new(Semaphore::new(n as usize)));
            let handle = tokio::runtime::Handle::current();
            let c = ctx.clone();
            std::thread::Builder::new()
                .name("aibench-dispatch".into())
                .spawn(move || dispatch(c, schedule, sem, handle))
                .expect("spawn dispatcher thread");
            loop {
                let notified = ctx.all_done.notified();
                if ctx.dispatch_done.load(Ordering::SeqCst) && ctx.outstanding.load(Ordering::SeqCst) == 0 {
                    break;
                }
                notified.await;
            }
        }
    }
}

/// Sends at the scheduled absolute times; runs on its own thread with fine
/// timer slack, because tokio's timer has millisecond granularity.
fn dispatch(ctx: Arc<Ctx>, schedule: Schedule, sem: Option<Arc<Semaphore>>, handle: tokio::runtime::Handle) {
    set_timer_slack();
    for (i, offset) in schedule.enumerate() {
        let intended = ctx.start + Duration::from_secs_f64(offset);
        loop {
            if ctx.stop.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            if now >= intended {
                break;
            }
            std::thread::sleep((intended - now).min(Duration::from_millis(50)));
        }
        // Counted before the last stop check, so `drive` cannot finish while
        // a request is about to be spawned.
        ctx.outstanding.fetch_add(1, Ordering::SeqCst);
        if ctx.stop.load(Ordering::SeqCst) {
            ctx.outstanding.fetch_sub(1, Ordering::SeqCst);
            break;
        }
        let c = ctx.clone();
        let sem = sem.clone();
        handle.spawn(async move {
            open_request(&c, i as u64, intended, sem).await;
            if c.outstanding.fetch_sub(1, Ordering::SeqCst) == 1 {
                c.all_done.notify_waiters();
            }
        });
    }
    ctx.dispatch_done.store(true, Ordering::SeqCst);
    ctx.all_done.notify_waiters();
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

async fn open_request(ctx: &Arc<Ctx>, seq: u64, intended: Instant, sem: Option<Arc<Semaphore>>) {
    let ready = Instant::now();
    let _permit = match &sem {
        Some(s) => match s.clone().acquire_owned().await {
            Ok(p) => Some(p),
            Err(_) => return,
        },
        None => None,
    };
    let target = pick_target(ctx);
    let mut conn = ctx.pools[target].lock().unwrap_or_else(|e| e.into_inner()).pop();
    // Scratch buffers are per task here; reuse one from this thread when free.
    let mut scratch = SCRATCH.with(|s| s.borrow_mut().take()).unwrap_or_default();
    let mut abort = ctx.abort.clone();
    let out = tokio::select! {
        r = exec(ctx, &mut conn, target, seq, ready, Some(intended), &mut scratch) => r,
        _ = abort.wait_for(|a| *a) => None,
    };
    if let Some(c) = conn {
        ctx.pools[target].lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }
    if let Some(rec) = out {
        finish_request(ctx, (seq % SHARDS as u64) as usize, seq, target, &rec, &scratch);
    }
    SCRATCH.with(|s| *s.borrow_mut() = Some(scratch));
}

fn pick_target(ctx: &Ctx) -> usize {
    if ctx.endpoints.len() == 1 {
        0
    } else {
        (ctx.rr.fetch_add(1, Ordering::Relaxed) % ctx.endpoints.len() as u64) as usize
    }
}

async fn user(
    ctx: Arc<Ctx>,
    timer: Arc<super::timer::PreciseTimer>,
    uid: u64,
    deadline: Option<Instant>,
    (max, total): (Option<u64>, Option<u64>),
    think: Duration,
    delay: Duration,
) {
    let mut abort = ctx.abort.clone();
    if !delay.is_zero() && !sleep_unless_stopped(&ctx, &timer, Instant::now() + delay).await {
        return;
    }
    let mut conns: Vec<Option<Conn>> = ctx.endpoints.iter().map(|_| None).collect();
    let mut scratch = Scratch::default();
    let mut backoff = Pause::new(uid);
    let mut n = 0u64;
    // This user's own cycle accounting (measured requests only).
    let (mut first_sent, mut last_done, mut cycles) = (None::<Instant>, None::<Instant>, 0u64);
    let (mut gap_sum_us, mut gap_n, mut prev_done) = (0f64, 0u64, None::<Instant>);
    loop {
        if ctx.stop.load(Ordering::Relaxed)
            || max.is_some_and(|m| n >= m)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        let seq = ctx.seq.fetch_add(1, Ordering::Relaxed);
        if total.is_some_and(|t| seq >= t) {
            break;
        }
        let target = pick_target(&ctx);
        let ready = Instant::now();
        if let Some(p) = prev_done {
            gap_sum_us += ready.saturating_duration_since(p + think).as_secs_f64() * 1e6;
            gap_n += 1;
        }
        let out = tokio::select! {
            r = exec(&ctx, &mut conns[target], target, seq, ready, None, &mut scratch) => r,
            _ = abort.wait_for(|a| *a) => return,
        };
        if let Some(rec) = out {
            if !finish_request(&ctx, (uid % SHARDS as u64) as usize, seq, target, &rec, &scratch) {
                first_sent.get_or_insert(rec.sent);
                last_done = Some(rec.done);
                cycles += 1;
            }
            prev_done = Some(rec.done);
            if rec.refused {
                // The server is not taking requests: pause before the next,
                // longer each time, rather than hammering it.
                let pause = backoff.next();
                let wake = rec.done + pause;
                n += 1;
                if deadline.is_some_and(|d| wake >= d) {
                    break;
                }
                ctx.backoffs.fetch_add(1, Ordering::Relaxed);
                let from = Instant::now();
                let completed = sleep_unless_stopped(&ctx, &timer, wake).await;
                ctx.backoff_us.fetch_add(from.elapsed().as_micros() as u64, Ordering::Relaxed);
                // The pause replaces the think time: it is not the client's gap.
                prev_done = None;
                if !completed {
                    break;
                }
                continue;
            }
            backoff.reset();
        }
        n += 1;
        if !think.is_zero() {
            let wake = prev_done.unwrap_or_else(Instant::now) + think;
            if deadline.is_some_and(|d| wake >= d) {
                break;
            }
            if !sleep_unless_stopped(&ctx, &timer, wake).await {
                break;
            }
        }
    }
    if let (Some(a), Some(b)) = (first_sent, last_done) {
        // A cycle ends after its think time: the span holds whole cycles.
        let span = (b + think).saturating_duration_since(a).as_secs_f64();
        let mut sh = ctx.shards[(uid % SHARDS as u64) as usize].lock().unwrap_or_else(|e| e.into_inner());
        if span > 0.0 {
            sh.user_rate_sum += cycles as f64 / span;
        }
        sh.gap_sum_us += gap_sum_us;
        sh.gap_n += gap_n;
    }
}

/// A user's pauses after refused requests: exponential from 10 ms to 1 s,
/// jittered (so users that failed together do not retry together), reset by
/// a request the server answered.
struct Pause {
    rng: rand_chacha::ChaCha8Rng,
    next: Duration,
}

impl Pause {
    fn new(uid: u64) -> Pause {
        use rand::SeedableRng;
        Pause { rng: rand_chacha::ChaCha8Rng::seed_from_u64(uid ^ 0x0062_6163_6b6f_6666), next: BACKOFF_MIN }
    }

    fn next(&mut self) -> Duration {
        use rand::RngExt;
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        base.mul_f64(self.rng.random_range(0.5..1.5)).min(BACKOFF_MAX)
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Sleeps until `until`; false when the run was stopped meanwhile.
async fn sleep_unless_stopped(ctx: &Ctx, timer: &super::timer::PreciseTimer, until: Instant) -> bool {
    let stopped = ctx.stopped.notified();
    if ctx.stop.load(Ordering::SeqCst) {
        return false;
    }
    tokio::select! {
        _ = timer.sleep_until(until) => true,
        _ = stopped => false,
    }
}

/// One request: connection, exchange (one retry on a stale keep-alive
/// connection), timeout, and classification.
async fn exec(
    ctx: &Ctx,
    conn: &mut Option<Conn>,
    target: usize,
    seq: u64,
    ready: Instant,
    intended: Option<Instant>,
    scratch: &mut Scratch,
) -> Option<Record> {
    let templated;
    let req: &[u8] = match &ctx.requests {
        Requests::Fixed(t) => {
            let list = &t[target];
            &list[(seq % list.len() as u64) as usize]
        }
        Requests::Template { method, path, headers, body } => {
            let b = body.replace("{{seq}}", &seq.to_string());
            templated = format_request(method, &path[target], &ctx.endpoints[target], headers, b.as_bytes());
            &templated
        }
    };
    let meta = ctx.meta[(seq % ctx.meta.len() as u64) as usize];
    ctx.in_flight.fetch_add(1, Ordering::Relaxed);
    let mut sent = Instant::now();
    let result = tokio::time::timeout(ctx.timeout, async {
        for attempt in 0..2 {
            scratch.reset();
            if conn.is_none() {
                match Conn::connect(&ctx.endpoints[target]).await {
                    Ok(c) => *conn = Some(c),
                    Err(f) => return Err(f),
                }
            }
            let c = conn.as_mut().expect("connected");
            let reused = c.requests > 0;
            sent = Instant::now();
            let mut sink = Sink { s: scratch, api: ctx.api, stream: ctx.stream, llm: ctx.llm };
            match c.exchange(req, &mut sink).await {
                Ok(fin) => {
                    if fin.close {
                        *conn = None;
                    }
                    return Ok(());
                }
                Err((f, nothing_back)) => {
                    *conn = None;
                    // A kept-alive connection the server had closed: try once more.
                    if nothing_back && reused && attempt == 0 {
                        continue;
                    }
                    return Err(f);
                }
            }
        }
        Err(Failure::new(ErrorClass::Other, "unreachable"))
    })
    .await;
    let done = Instant::now();
    ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
    if *ctx.abort.borrow() {
        return None;
    }
    let failure = match result {
        Err(_) => {
            *conn = None;
            Some((ErrorClass::Timeout, format!("no complete response within {:.1} s", ctx.timeout.as_secs_f64())))
        }
        Ok(Err(f)) => Some((f.class, f.message)),
        Ok(Ok(())) => classify(ctx, scratch),
    };
    let (output_tokens, from_usage) = scratch.tokens.output_tokens();
    let (input_tokens, input_from_usage) = match scratch.tokens.usage_input {
        Some(n) => (n, true),
        None => (meta.0, false),
    };
    // Whether the server answered at all (a response head arrived).
    let answered = scratch.status != 0;
    let unanswered = failure.as_ref().is_some_and(|(class, _)| !answered && *class != ErrorClass::Timeout);
    ctx.note_reachability(answered, failure.is_none(), unanswered, done);
    let refused = unanswered || (failure.is_some() && scratch.status >= 500);
    let short = ctx.llm && ctx.ignore_eos && failure.is_none() && meta.1 > 0 && output_tokens < meta.1;
    let mut rec = Record {
        intended,
        ready,
        sent,
        done,
        first: scratch.tokens.first,
        last: scratch.tokens.last,
        failure,
        output_tokens: if ctx.llm { output_tokens } else { 0 },
        tokens_from_usage: from_usage,
        input_tokens: if ctx.llm { input_tokens } else { 0 },
        input_from_usage,
        good: false,
        llm: ctx.llm,
        short,
        refused,
    };
    rec.good = rec.failure.is_none() && meets_slo(&ctx.slo, &rec, &scratch.tokens.itl_us);
    Some(rec)
}

fn classify(ctx: &Ctx, s: &mut Scratch) -> Option<(ErrorClass, String)> {
    let status = s.status;
    let excerpt = || {
        let t = String::from_utf8_lossy(&s.err_body).replace('\n', " ");
        if t.is_empty() { String::new() } else { format!(": {}", t.chars().take(200).collect::<String>()) }
    };
    if status >= 500 {
        return Some((ErrorClass::Http5xx, format!("HTTP {status}{}", excerpt())));
    }
    if status >= 400 {
        return Some((ErrorClass::Http4xx, format!("HTTP {status}{}", excerpt())));
    }
    if !(200..300).contains(&status) {
        return Some((ErrorClass::Other, format!("unexpected HTTP {status}")));
    }
    if !ctx.llm {
        return None;
    }
    if !ctx.stream {
        if is_ndjson(ctx.api) {
            s.tokens.ollama_line(&s.body, None);
        } else {
            s.tokens.openai_body(&s.body);
        }
        if s.tokens.bad_chunks > 0 {
            return Some((ErrorClass::Other, "response body is not the expected JSON".into()));
        }
    }
    if let Some(e) = &s.tokens.error {
        return Some((ErrorClass::Other, format!("server error: {e}")));
    }
    if ctx.stream && !s.tokens.done {
        let what = if is_ndjson(ctx.api) { "a final line with done: true" } else { "data: [DONE]" };
        return Some((ErrorClass::StreamBroken, format!("stream ended without {what}")));
    }
    None
}

fn meets_slo(slo: &Slo, r: &Record, itl_us: &[u64]) -> bool {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let e2e = ms(r.e2e_end().saturating_duration_since(r.sent));
    if slo.e2e_ms.is_some_and(|l| e2e > l) {
        return false;
    }
    let ttft = r.first.map(|f| ms(f.saturating_duration_since(r.sent))).unwrap_or(e2e);
    if slo.ttft_ms.is_some_and(|l| ttft > l) {
        return false;
    }
    if let Some(l) = slo.tpot_ms
        && r.output_tokens > 1
        && (e2e - ttft) / (r.output_tokens - 1) as f64 > l
    {
        return false;
    }
    if let Some(l) = slo.itl_ms
        && itl_us.iter().any(|g| *g as f64 / 1000.0 > l)
    {
        return false;
    }
    true
}

/// Logs and records a finished request; returns whether it was warmup.
fn finish_request(ctx: &Ctx, shard: usize, seq: u64, target: usize, rec: &Record, scratch: &Scratch) -> bool {
    let warmup = seq < ctx.warmup_requests || rec.sent < ctx.origin;
    if let Some(log) = &ctx.log {
        let since = |t: Instant| t.saturating_duration_since(ctx.start).as_secs_f64();
        let us = |a: Instant, b: Instant| b.saturating_duration_since(a).as_micros() as u64;
        let line = serde_json::json!({
            "seq": seq,
            "target": target,
            "warmup": warmup,
            "ok": rec.failure.is_none(),
            "status": scratch.status,
            "error_class": rec.failure.as_ref().map(|f| f.0.name()),
            "error": rec.failure.as_ref().map(|f| f.1.clone()),
            "intended_s": rec.intended.map(since),
            "sent_s": since(rec.sent),
            "queue_us": us(rec.intended.unwrap_or(rec.ready), rec.sent),
            "ttft_us": rec.first.filter(|_| rec.failure.is_none()).map(|f| us(rec.sent, f)),
            "e2e_us": rec.failure.is_none().then(|| us(rec.sent, rec.e2e_end())),
            "output_tokens": rec.output_tokens,
            "input_tokens": rec.input_tokens,
            "itl_us": if rec.failure.is_none() { scratch.tokens.itl_us.clone() } else { Vec::new() },
        });
        let _ = log.send(Some(line.to_string()));
    }
    if warmup {
        ctx.warmup_excluded.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    let itl = if rec.failure.is_none() { &scratch.tokens.itl_us[..] } else { &[] };
    ctx.shards[shard].lock().unwrap_or_else(|e| e.into_inner()).record(rec, itl, ctx.origin);
    false
}

type LogWriter = (mpsc::UnboundedSender<Option<String>>, tokio::task::JoinHandle<()>);

fn start_log_writer(path: &str) -> Result<LogWriter, String> {
    if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(format!("per_request_log: folder '{}' does not exist", dir.display()));
    }
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::util::file_mode(std::path::Path::new(path)))
        .open(path)
        .map_err(|e| format!("per_request_log: cannot create '{path}': {e}"))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    let h = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        while let Some(Some(line)) = rx.blocking_recv() {
            let _ = w.write_all(line.as_bytes());
            let _ = w.write_all(b"\n");
        }
        let _ = w.flush();
    });
    Ok((tx, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_10_ms_to_1_s_with_jitter_and_reset() {
        let mut p = Pause::new(3);
        let mut base = BACKOFF_MIN;
        for _ in 0..12 {
            let d = p.next();
            assert!(d >= base.mul_f64(0.5) && d <= base.mul_f64(1.5).min(BACKOFF_MAX), "{d:?} around {base:?}");
            base = (base * 2).min(BACKOFF_MAX);
        }
        assert!(p.next() <= BACKOFF_MAX);
        p.reset();
        assert!(p.next() <= BACKOFF_MIN.mul_f64(1.5), "a success starts over");
        // Users that failed together do not retry together.
        let (a, b) = (Pause::new(1).next(), Pause::new(2).next());
        assert_ne!(a, b);
    }
}
