//! Running a benchmark: prepare the requests, start the shared state, drive
//! the workload (closed or open loop), stop on a signal or an unreachable
//! server, and report. The parts: `prepare` (requests, model discovery),
//! `ctx` (shared state), `closed`/`open` (the drivers), `exchange` (one
//! request), `ticker` (progress, sampling), `facts` (the report's facts).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};

use super::ctx::{Ctx, Halt, NONE, RunError, shard_count};
use super::http1::Endpoint;
use super::progress::Progress;
use super::report::Report;
use super::spec::{Api, BenchSpec, ValidSpec, Workload};
use super::stats::Shard;
use super::{closed, exchange, facts, open, prepare, sessions, ticker};
use crate::tokenize::prompts::Counter;
use crate::typed::FieldError;

/// How the caller steers a run.
pub struct Control {
    /// Becomes `Some(signal name)` to stop issuing (Ctrl-C, SIGTERM);
    /// in-flight requests get a grace period and the result is marked
    /// interrupted by that signal.
    pub stop: watch::Receiver<Option<&'static str>>,
    pub progress: Option<mpsc::UnboundedSender<Progress>>,
    /// One task of a gang-started job: meet the others at a barrier after
    /// preparing, and start sending at the common instant.
    pub gang: Option<super::gang::Gang>,
}

impl Control {
    /// Steered only by a stop signal: no progress, no gang.
    pub fn new(stop: watch::Receiver<Option<&'static str>>) -> Control {
        Control { stop, progress: None, gang: None }
    }
}

const GRACE: Duration = Duration::from_secs(3);
/// Open files beyond the connections: stdio, the log, the runtime's own.
const FD_MARGIN: u64 = 64;

/// Runs a benchmark to completion (or until stopped) and reports. The spec
/// is valid by its type; what only the run can find (the dataset's file,
/// the server's model and `max_model_len`, the tokenizer) is a
/// [`RunError::Spec`] naming its field.
pub async fn run(spec: ValidSpec, control: Control) -> Result<Report, RunError> {
    let gang = control.gang.clone();
    let out = run_steered(spec, control).await;
    if let (Err(e), Some(g)) = (&out, &gang)
        && !matches!(e, RunError::Unavailable { kind: "gang", .. })
    {
        // The others must not wait the barrier's timeout for this task.
        g.fail(&e.to_string());
    }
    out
}

async fn run_steered(spec: ValidSpec, control: Control) -> Result<Report, RunError> {
    // A stop asked for while the run is still being prepared (a large
    // dataset counted through /tokenize) ends the preparation at once:
    // nothing has been measured, so there is nothing to save.
    let mut stop = control.stop.clone();
    let asked = control.stop.clone();
    let stopped = async move {
        let seen = stop.wait_for(|s| s.is_some()).await.map(|s| *s);
        match seen {
            Ok(s) => s,
            Err(_) => std::future::pending().await,
        }
    };
    let prepared = tokio::select! {
        p = prepare_run(spec) => match p {
            Ok(p) => p,
            // A loader that saw the signal first (a file read or prompts
            // counted in a blocking loop).
            Err(_) if let Some(sig) = asked.borrow().or_else(|| crate::interrupt::pending().map(|s| s.name())) => {
                return Err(RunError::Unavailable {
                    kind: "interrupted",
                    message: format!("interrupted ({sig}) while preparing the run; no request was sent"),
                });
            }
            Err(e) => return Err(e),
        },
        Some(sig) = stopped => {
            return Err(RunError::Unavailable {
                kind: "interrupted",
                message: format!("interrupted ({sig}) while preparing the run; no request was sent"),
            });
        }
    };
    measure(prepared, control).await
}

/// What preparing a run gives the measurement.
struct Prepared {
    spec: BenchSpec,
    endpoints: Vec<Endpoint>,
    open_files: u64,
    counter: Counter,
    plan: prepare::Plan,
    schedule: Option<open::Offsets>,
}

async fn prepare_run(mut valid: ValidSpec) -> Result<Prepared, RunError> {
    let spec = valid.spec();
    // Before the server is asked anything.
    spec.dataset.check_file().map_err(RunError::Spec)?;
    let endpoints = spec.target.endpoints().map_err(RunError::Spec)?;
    let open_files = check_open_files(&spec.workload, endpoints.len())?;
    let api = spec.target.api;
    let llm = api.is_llm();
    let mut max_model_len = None;
    let mut counter = Counter::Words;
    if llm {
        let given = spec.target.model.is_some();
        match prepare::model_info(api, &endpoints[0], Duration::from_secs_f64(spec.target.timeout_s)).await {
            Ok(info) => {
                max_model_len = info.max_model_len;
                if !given {
                    let name = info.name.ok_or_else(|| RunError::Unavailable {
                        kind: "http",
                        message: format!(
                            "target.model not given and {} lists no model; set target.model",
                            spec.target.url.list()[0]
                        ),
                    })?;
                    valid.set_model(name);
                }
            }
            Err(RunError::Unavailable { kind, message }) if !given => {
                return Err(RunError::Unavailable { kind, message: format!("target.model not given and {message}") });
            }
            Err(_) => {}
        }
        let spec = valid.spec();
        let model = spec.target.model.clone().unwrap_or_default();
        counter = prepare::counter(spec, &endpoints[0], &model).await?;
    }
    let plan = prepare::requests(&valid, &endpoints, &counter, max_model_len).await?;
    // Built before the run: a schedule that cannot be made is a spec error,
    // not an open loop that silently sends nothing.
    let schedule: Option<open::Offsets> = match &valid.spec().workload {
        Workload::OpenLoop(w) => Some(Box::new(w.schedule().map_err(RunError::Spec)?)),
        Workload::Trace(w) => plan.trace.clone().map(|t| trace_offsets(t, w)),
        Workload::ClosedLoop(_) | Workload::Sessions(_) => None,
    };
    Ok(Prepared { spec: valid.into_inner(), endpoints, open_files, counter, plan, schedule })
}

/// Measures a prepared run and reports.
async fn measure(p: Prepared, control: Control) -> Result<Report, RunError> {
    let Prepared { spec, endpoints, open_files, counter, plan, schedule } = p;
    let api = spec.target.api;
    let llm = api.is_llm();
    // The backlog cap: what the user set, else the default within the
    // open-file limit (each outstanding request may hold a connection).
    let max_outstanding = spec.workload.max_in_flight().unwrap_or_else(|| {
        super::spec::DEFAULT_MAX_IN_FLIGHT.min(open_files.saturating_sub(FD_MARGIN + endpoints.len() as u64).max(1))
    });
    let prepare::Plan { requests, meta, stats: dataset_stats, trace, sessions } = plan;

    let log = match &spec.per_request_log {
        Some(path) => Some(exchange::start_log_writer(path).map_err(RunError::Spec)?),
        None => None,
    };
    let (warmup_s, warmup_requests) = spec.workload.warmup();
    // What the shared state allocates is made before the clock starts: an
    // open loop's first requests are due at once.
    let shards = (0..shard_count()).map(|_| Mutex::new(Shard::default())).collect();
    let live = Default::default();
    let loop_delay = Mutex::new(super::stats::new_hist());
    // The barrier comes after everything slow (prompts, connections' set-up
    // state) so that the common instant is the first send of every task.
    let gang = match &control.gang {
        Some(g) => {
            let mut stop = control.stop.clone();
            tokio::select! {
                met = g.meet() => Some(met.map_err(|message| RunError::Unavailable { kind: "gang", message })?),
                _ = stop.wait_for(|s| s.is_some()) => {
                    return Err(RunError::Unavailable {
                        kind: "interrupted",
                        message: "interrupted while waiting at the gang barrier; no request was sent".into(),
                    });
                }
            }
        }
        None => None,
    };
    let start = Instant::now();
    let start_unix = crate::clock::now();
    let cpu0 = facts::cpu_seconds();
    let (abort_tx, abort_rx) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        api,
        stream: spec.target.stream,
        llm,
        ignore_eos: spec.target.ignore_eos && matches!(api, Api::OpenaiCompletions | Api::OpenaiChat),
        pools: endpoints.iter().map(|_| Mutex::new(Vec::new())).collect(),
        target_in_flight: endpoints.iter().map(|_| AtomicU64::new(0)).collect(),
        target_sessions: endpoints.iter().map(|_| AtomicU64::new(0)).collect(),
        // With one target its share is the totals: nothing to keep apart.
        per_target: if endpoints.len() > 1 { endpoints.iter().map(|_| Mutex::default()).collect() } else { Vec::new() },
        endpoints,
        requests,
        meta,
        record_sends: trace.is_some() && matches!(spec.workload, Workload::Trace(_)),
        shards,
        live,
        seq: AtomicU64::new(0),
        balance: spec.target.balance,
        rr: AtomicU64::new(0),
        in_flight: AtomicI64::new(0),
        warmup_excluded: AtomicU64::new(0),
        warmup_requests,
        start,
        origin: start + Duration::from_secs_f64(warmup_s),
        timeout: Duration::from_secs_f64(spec.target.timeout_s),
        max_event_bytes: spec.target.max_event_bytes as usize,
        not_sent: AtomicU64::new(0),
        unfinished: AtomicU64::new(0),
        max_outstanding,
        send_until: match &spec.workload {
            Workload::OpenLoop(w) => w.duration_s.map(|d| start + Duration::from_secs_f64(d + w.warmup_s)),
            Workload::Trace(w) => w.duration_s.map(|d| start + Duration::from_secs_f64(d)),
            _ => None,
        },
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
        loop_delay,
        pacer: Mutex::new(None),
    });

    let (halt_tx, mut halt_rx) = watch::channel(None::<Halt>);
    let plan = super::progress::Plan::of(&spec.workload);
    let ticker = tokio::spawn(ticker::tick(ctx.clone(), control.progress.clone(), plan));
    let sampler = tokio::spawn(ticker::sample_loop(ctx.clone(), spec.workload.unreachable_after(), halt_tx.clone()));
    let probe = tokio::spawn(ticker::probe_loop(ctx.clone()));
    let mut stop = control.stop.clone();
    let forward = tokio::spawn(async move {
        if let Ok(sig) = stop.wait_for(|s| s.is_some()).await
            && let Some(name) = *sig
        {
            let _ = halt_tx.send(Some(Halt::Signal(name)));
        }
    });
    let work = drive(ctx.clone(), &spec.workload, schedule, sessions);
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
    probe.abort();
    forward.abort();
    let total = merge_shards(&ctx);
    let source = if llm { counter.source() } else { "none".to_string() };
    let mut report = facts::finish(&ctx, &spec, &total, halt, (start, start_unix), cpu0, source);
    facts::add_workload_facts(&mut report, &spec, &total, dataset_stats, trace.as_deref());
    report.gang = gang;
    if let Some((tx, writer)) = log {
        // Every request has finished: close the log and wait for the flush.
        let _ = tx.send(None);
        let (lines, error) = writer.await.unwrap_or_else(|e| (0, Some(format!("per_request_log writer failed: {e}"))));
        if let Some(e) = &error {
            report.warnings.push(e.clone());
        }
        report.per_request_log =
            Some(super::report::LogInfo { path: spec.per_request_log.clone().unwrap_or_default(), lines, error });
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
fn check_open_files(w: &Workload, targets: usize) -> Result<u64, RunError> {
    let (soft, hard) = crate::procs::raise_open_files_limit();
    let Some((field, conns)) = w.connections(targets) else { return Ok(soft) };
    let need = conns.saturating_add(FD_MARGIN);
    if need <= soft {
        return Ok(soft);
    }
    Err(RunError::Spec(FieldError::new(
        field,
        format!(
            "{conns} connections need about {need} open files, but this process may open only {soft} \
             (hard limit {hard}); raise the limit before running (`ulimit -n {need}`, or ask the system's \
             administrators to raise the hard limit) or use fewer connections"
        ),
    )))
}

async fn drive(ctx: Arc<Ctx>, w: &Workload, schedule: Option<open::Offsets>, script: Option<Arc<sessions::Script>>) {
    match (w, schedule, script) {
        (Workload::ClosedLoop(w), _, _) => closed::drive(ctx, w).await,
        (Workload::OpenLoop(w), Some(s), _) => open::drive(ctx, w.max_concurrency, s).await,
        (Workload::Trace(w), Some(s), _) => open::drive(ctx, w.max_concurrency, s).await,
        (Workload::Sessions(w), _, Some(script)) => sessions::drive(ctx, w, script).await,
        _ => {}
    }
}

/// A trace's send offsets: its timestamps × `time_scale`, within the
/// workload's request count and duration.
fn trace_offsets(t: Arc<crate::datasets::trace::Trace>, w: &super::spec::TraceReplay) -> open::Offsets {
    let scale = w.time_scale;
    let n = w.total_requests.map_or(t.entries.len(), |n| (n as usize).min(t.entries.len()));
    let until = w.duration_s;
    Box::new((0..n).map(move |i| t.entries[i].at_ms / 1000.0 * scale).take_while(move |s| until.is_none_or(|d| *s < d)))
}
