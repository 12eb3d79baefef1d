//! Multi-turn sessions: each session keeps its conversation and sends all
//! of it with every turn (chat APIs: as messages; completions: as one text),
//! puts the reply (streamed, or the dataset's own) in its history, thinks,
//! and goes on. Sessions run as `users` at once, each starting a new one
//! when one ends, or start at `session_rate` per second.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::build::Framer;
use super::closed::{Pause, back_off, sleep_unless_stopped};
use super::ctx::Ctx;
use super::dataset::{PromptText, group_prefixes, is_chat, load_conversations, turn_output};
use super::exchange::{Scratch, exec, finish_request};
use super::http1::Conn;
use super::schedule::{Arrival, Schedule};
use super::spec::{Dataset, History, Sessions, Synthetic, Turns, ValidSpec, located};
use super::timer::PreciseTimer;
use crate::datasets::DatasetStats;
use crate::tokenize::Message;
use crate::tokenize::prompts::{Counter, PromptMaker};
use crate::typed::FieldError;

/// One turn of a session's plan.
#[derive(Clone)]
struct TurnPlan {
    user: String,
    answer: Option<String>,
    output: u64,
}

#[derive(Clone)]
struct SessionPlan {
    system: Option<String>,
    turns: Vec<TurnPlan>,
}

enum Source {
    Conversations(Vec<SessionPlan>),
    Synthetic { maker: Box<PromptMaker>, spec: Synthetic, prefixes: Option<Vec<String>>, turns: u64 },
}

/// What the sessions send: their turns, how requests are framed, how
/// prompts are counted.
pub(super) struct Script {
    source: Source,
    framer: Framer,
    chat: bool,
    counter: Counter,
    history: History,
}

impl Script {
    /// Reads the conversations (or sets up synthetic turns) for `w`, the
    /// spec's workload.
    pub(super) async fn new(
        spec: &ValidSpec,
        w: &Sessions,
        framer: Framer,
        counter: &Counter,
    ) -> Result<(Script, Option<DatasetStats>), FieldError> {
        let spec = spec.spec();
        let chat = is_chat(spec.target.api);
        let (source, stats) = match &spec.dataset {
            Dataset::Synthetic(s) => {
                let Turns::Count(turns) = w.turns else {
                    unreachable!("a valid spec's synthetic sessions have a number of turns (Workload::fits)")
                };
                let maker = PromptMaker::new(counter.clone(), chat).await.map_err(located)?;
                let prefixes = group_prefixes(s, &maker)?;
                (Source::Synthetic { maker: Box::new(maker), spec: s.clone(), prefixes, turns }, None)
            }
            d => {
                let (mut convs, mut stats, fixed) = load_conversations(d)?;
                let common = d.common().cloned().unwrap_or_default();
                common.order(&mut convs);
                let mut plans = Vec::new();
                for c in convs {
                    if plans.len() >= common.limit() {
                        break;
                    }
                    let n = match w.turns {
                        Turns::Dataset => c.turns.len(),
                        Turns::Count(n) => (n as usize).min(c.turns.len()),
                    };
                    let mut turns = Vec::with_capacity(n);
                    for t in c.turns.into_iter().take(n) {
                        let Some(output) = turn_output(&t.answer, fixed, &common, counter, &mut stats).await? else {
                            break;
                        };
                        if w.history == History::Dataset && t.answer.is_none() {
                            break;
                        }
                        turns.push(TurnPlan { user: t.user, answer: t.answer, output });
                    }
                    if turns.is_empty() {
                        continue;
                    }
                    plans.push(SessionPlan { system: c.system, turns });
                }
                stats.used = plans.len() as u64;
                if plans.is_empty() {
                    return Err(crate::datasets::empty_error(&stats));
                }
                (Source::Conversations(plans), Some(stats))
            }
        };
        Ok((Script { source, framer, chat, counter: counter.clone(), history: w.history }, stats))
    }

    /// Session `n`'s plan: a conversation of the dataset (cycled), or
    /// synthetic turns drawn for it.
    fn plan(&self, n: u64) -> std::borrow::Cow<'_, SessionPlan> {
        use std::borrow::Cow;
        match &self.source {
            Source::Conversations(all) => Cow::Borrowed(&all[(n % all.len() as u64) as usize]),
            Source::Synthetic { maker, spec, prefixes, turns } => {
                let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let system = prefixes.as_ref().map(|g| g[(n % g.len() as u64) as usize].clone());
                let plan = (0..*turns)
                    .map(|t| {
                        let p = spec.prompt_tokens.draw(&mut rng) as usize;
                        let output = spec.output_tokens.draw(&mut rng);
                        // Chat turns are messages of their own; completions
                        // turns continue the text (and the first one, with no
                        // system prompt, carries the tokens the server adds).
                        let user = if self.chat {
                            maker.text(p, &mut rng, true)
                        } else if t == 0 && system.is_none() {
                            maker.text(p.saturating_sub(maker.fixed()).max(1), &mut rng, true)
                        } else {
                            maker.text(p, &mut rng, false)
                        };
                        TurnPlan { user, answer: None, output }
                    })
                    .collect();
                Cow::Owned(SessionPlan { system, turns: plan })
            }
        }
    }
}

/// A session's conversation so far, as the API takes it.
enum Conversation {
    Messages(Vec<Message>),
    Text(String),
}

impl Conversation {
    fn new(chat: bool, system: Option<&str>) -> Conversation {
        match (chat, system) {
            (true, Some(s)) => Conversation::Messages(vec![Message::new("system", s)]),
            (true, None) => Conversation::Messages(Vec::new()),
            (false, s) => Conversation::Text(s.unwrap_or_default().to_string()),
        }
    }

    fn push(&mut self, role: &str, text: &str) {
        match self {
            Conversation::Messages(m) => m.push(Message::new(role, text)),
            Conversation::Text(s) => {
                // Pieces that carry their own spacing are joined as they are.
                let joined = s.is_empty() || s.ends_with(char::is_whitespace) || text.starts_with(char::is_whitespace);
                if !joined {
                    s.push('\n');
                }
                s.push_str(text);
            }
        }
    }

    async fn count(&self, counter: &Counter) -> Result<u64, String> {
        Ok(match self {
            Conversation::Messages(m) => counter.count_messages(m).await? as u64,
            Conversation::Text(s) => counter.count(s, false).await? as u64,
        })
    }

    fn prompt(&self) -> Value {
        match self {
            Conversation::Messages(m) => PromptText::Messages(m.clone()).json(),
            Conversation::Text(s) => Value::String(s.clone()),
        }
    }
}

/// Runs the sessions to the end of the workload.
pub(super) async fn drive(ctx: Arc<Ctx>, w: &Sessions, script: Arc<Script>) {
    let deadline = w.duration_s.map(|d| ctx.start + Duration::from_secs_f64(d));
    let think = Duration::from_secs_f64(w.think_time_ms / 1000.0);
    let timer = Arc::new(PreciseTimer::start());
    let mut set = tokio::task::JoinSet::new();
    let started = Arc::new(std::sync::atomic::AtomicU64::new(0));
    match (w.users, w.session_rate) {
        (Some(users), _) => {
            for u in 0..users {
                let delay = Duration::from_secs_f64(w.ramp_up_s * u as f64 / users as f64);
                let (ctx, script, timer, started) = (ctx.clone(), script.clone(), timer.clone(), started.clone());
                let total = w.total_sessions;
                set.spawn(async move {
                    if !delay.is_zero() && !sleep_unless_stopped(&ctx, &timer, Instant::now() + delay).await {
                        return;
                    }
                    let mut scratch = Scratch::default();
                    // The closed loop's backoff: a session refused by the
                    // server (unreachable, 5xx) pauses this user before its next.
                    let mut pause = Pause::new(u);
                    loop {
                        let n = started.fetch_add(1, Ordering::Relaxed);
                        if total.is_some_and(|t| n >= t) || !running(&ctx, deadline) {
                            break;
                        }
                        match session(&ctx, &script, &timer, n, deadline, think, &mut scratch).await {
                            // A session cut short means the run is ending: no new one.
                            End::Cut => break,
                            End::Failed { refused: true, done } => {
                                if !back_off(&ctx, &timer, &mut pause, done, deadline).await {
                                    break;
                                }
                            }
                            _ => pause.reset(),
                        }
                    }
                });
            }
        }
        (None, Some(rate)) => {
            let starts = Schedule::new(rate, Arrival::Poisson, None, w.seed, w.total_sessions, w.duration_s);
            let sem = w.max_concurrency.map(|m| Arc::new(tokio::sync::Semaphore::new(m as usize)));
            // Sessions started and not yet ended (running, or waiting for a
            // max_concurrency slot): at most `max_outstanding`.
            let active = Arc::new(std::sync::atomic::AtomicU64::new(0));
            for (n, offset) in starts.into_iter().flatten().enumerate() {
                let at = ctx.start + Duration::from_secs_f64(offset);
                if !sleep_unless_stopped(&ctx, &timer, at).await {
                    break;
                }
                if active.load(Ordering::SeqCst) >= ctx.max_outstanding {
                    ctx.not_sent.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                active.fetch_add(1, Ordering::SeqCst);
                let guard = Active(active.clone());
                let permit = match &sem {
                    Some(s) => match s.clone().acquire_owned().await {
                        Ok(p) => Some(p),
                        Err(_) => break,
                    },
                    None => None,
                };
                let (ctx, script, timer) = (ctx.clone(), script.clone(), timer.clone());
                set.spawn(async move {
                    let _active = guard;
                    let _permit = permit;
                    let mut scratch = Scratch::default();
                    session(&ctx, &script, &timer, n as u64, deadline, think, &mut scratch).await;
                });
            }
        }
        (None, None) => {}
    }
    while set.join_next().await.is_some() {}
}

/// One session counted as active until dropped.
struct Active(Arc<std::sync::atomic::AtomicU64>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn running(ctx: &Ctx, deadline: Option<Instant>) -> bool {
    !ctx.stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d)
}

/// How a session ended.
enum End {
    Completed,
    /// A turn failed; `refused`: the server did not take it (unreachable,
    /// 5xx), as the closed loop's backoff counts it.
    Failed {
        refused: bool,
        done: Instant,
    },
    Cut,
}

/// One session, turn by turn, on one target (its prefix cache is there),
/// picked when it starts (`Ctx::pick_session_target`).
async fn session(
    ctx: &Ctx,
    script: &Script,
    timer: &PreciseTimer,
    n: u64,
    deadline: Option<Instant>,
    think: Duration,
    scratch: &mut Scratch,
) -> End {
    let plan = script.plan(n);
    let target = ctx.pick_session_target();
    ctx.target_sessions[target].fetch_add(1, Ordering::Relaxed);
    let shard = n;
    let mut conn: Option<Conn> = None;
    let mut conv = Conversation::new(script.chat, plan.system.as_deref());
    scratch.tokens.capture = script.history == History::Generated;
    let begun = Instant::now();
    let mut last_done = begun;
    let mut abort = ctx.abort.clone();
    let mut end = End::Completed;
    for (t, turn) in plan.turns.iter().enumerate() {
        if !running(ctx, deadline) {
            end = End::Cut;
            break;
        }
        conv.push("user", &turn.user);
        // Counted as the server will (0, shown as a deviation, if it cannot be).
        let asked = conv.count(&script.counter).await.unwrap_or_default();
        let req = script.framer.frame(target, &conv.prompt(), turn.output);
        let seq = ctx.seq.fetch_add(1, Ordering::Relaxed);
        let ready = Instant::now();
        let out = tokio::select! {
            r = exec(ctx, &mut conn, target, (&req, (asked, turn.output)), ready, None, None, scratch) => r,
            _ = abort.wait_for(|a| *a) => {
                ctx.unfinished.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        let Some(mut rec) = out else {
            end = End::Cut;
            break;
        };
        rec.turn = Some(t as u32);
        finish_request(ctx, shard, seq, target, &rec, scratch);
        last_done = rec.done;
        if rec.failure.is_some() {
            // A conversation cannot go on without its reply.
            end = End::Failed { refused: rec.refused, done: rec.done };
            break;
        }
        let reply = match (script.history, &turn.answer) {
            (History::Dataset, Some(a)) => a.clone(),
            _ => std::mem::take(&mut scratch.tokens.text),
        };
        conv.push("assistant", &reply);
        if t + 1 < plan.turns.len() && !think.is_zero() {
            let wake = rec.done + think;
            if deadline.is_some_and(|d| wake >= d) || !sleep_unless_stopped(ctx, timer, wake).await {
                end = End::Cut;
                break;
            }
        }
    }
    ctx.target_sessions[target].fetch_sub(1, Ordering::Relaxed);
    let mut sh = ctx.shard(shard);
    let s = &mut sh.sessions;
    s.started += 1;
    match end {
        End::Completed => {
            s.completed += 1;
            s.record_duration(last_done.saturating_duration_since(begun));
        }
        End::Failed { .. } => s.failed += 1,
        End::Cut => s.cut += 1,
    }
    end
}
