//! Signal policy shared by the whole process: Ctrl-C (SIGINT) and SIGTERM.
//!
//! tokio keeps its signal handlers installed once registered, so the process
//! needs one policy. Long work that can stop cleanly (a benchmark, a
//! deployment wait, a REPL evaluation) registers as a *consumer* and is told
//! to stop, with the signal's name; with no consumer the process exits at
//! once, 130 for SIGINT and 143 for SIGTERM, as a shell expects. A second
//! Ctrl-C quits at once ("I mean it"); SIGTERM never escalates, because a
//! batch system may send it more than once (an early warning, then the time
//! limit) and the first one asked for a clean stop already.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

/// A stop request and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The exit status a shell gives a process ended by this signal.
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    fn number(self) -> i32 {
        match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
        }
    }

    fn from_number(n: i32) -> Option<Signal> {
        match n {
            libc::SIGINT => Some(Signal::Interrupt),
            libc::SIGTERM => Some(Signal::Terminate),
            _ => None,
        }
    }
}

#[derive(Default)]
struct State {
    consumers: AtomicUsize,
    /// The pending signal's number, 0 when none.
    pending: AtomicI32,
    at_prompt: AtomicBool,
    notify: Notify,
}

static STATE: OnceLock<Arc<State>> = OnceLock::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn state() -> &'static Arc<State> {
    STATE.get_or_init(|| Arc::new(State::default()))
}

fn quit(sig: Signal) -> ! {
    crate::flush_std();
    eprintln!("\ninterrupted ({})", sig.name());
    std::process::exit(sig.exit_code());
}

fn on_signal(st: &State, sig: Signal) {
    if sig == Signal::Interrupt && st.at_prompt.load(Ordering::SeqCst) {
        // The tty has already dropped the half-typed line.
        return;
    }
    if st.consumers.load(Ordering::SeqCst) == 0 {
        quit(sig);
    }
    let before = st.pending.compare_exchange(0, sig.number(), Ordering::SeqCst, Ordering::SeqCst);
    match before {
        Ok(_) => st.notify.notify_waiters(),
        // A second Ctrl-C while a stop is under way: quit now.
        Err(_) if sig == Signal::Interrupt => quit(sig),
        Err(_) => {}
    }
}

/// Starts the listeners (once per process). They run on a thread of their
/// own with its own small runtime, so a signal is answered (a stop asked
/// for, a second Ctrl-C quitting) however busy the main runtime is: an
/// overloaded open loop, a long template render or a dataset being read.
pub fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("aibench-signals".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            let _ = ready_tx.send(());
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let mut int = signal(SignalKind::interrupt()).ok();
            let mut term = signal(SignalKind::terminate()).ok();
            let _ = ready_tx.send(());
            let st = state().clone();
            loop {
                let sig = tokio::select! {
                    Some(()) = async { match int.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => Signal::Interrupt,
                    Some(()) = async { match term.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => Signal::Terminate,
                    else => return,
                };
                on_signal(&st, sig);
            }
        });
    });
    if spawned.is_ok() {
        // The handlers are in place before anything that may be interrupted starts.
        let _ = ready_rx.recv_timeout(std::time::Duration::from_secs(5));
    }
}

/// Held while some work wants to handle SIGINT and SIGTERM itself.
pub struct Guard(());

impl Guard {
    pub fn new() -> Guard {
        let st = state();
        if st.consumers.fetch_add(1, Ordering::SeqCst) == 0 {
            // The first consumer starts clean: a signal that raced the last
            // guard's drop (the listener runs on its own thread) was for
            // work that has ended.
            st.pending.store(0, Ordering::SeqCst);
        }
        Guard(())
    }

    /// Resolves at the next stop request (or at once if one is pending).
    pub async fn interrupted(&self) -> Signal {
        next_signal().await
    }

    /// The stop request waiting, if any (without waiting).
    pub fn signal(&self) -> Option<Signal> {
        pending()
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let st = state();
        if st.consumers.fetch_sub(1, Ordering::SeqCst) == 1 {
            st.pending.store(0, Ordering::SeqCst);
        }
    }
}

/// Held while an interactive prompt waits for a line. A Ctrl-C then is
/// neither work to stop nor a reason to exit: in raw mode the line editor
/// reads it as a key; without line editing (`TERM=dumb`) it arrives as a
/// signal, which is ignored here.
pub struct Prompt(());

impl Prompt {
    pub fn enter() -> Prompt {
        state().at_prompt.store(true, Ordering::SeqCst);
        Prompt(())
    }
}

impl Drop for Prompt {
    fn drop(&mut self) {
        state().at_prompt.store(false, Ordering::SeqCst);
    }
}

/// Resolves at the next stop request (or at once if one is pending); only
/// meaningful while a [`Guard`] is held.
pub async fn next_signal() -> Signal {
    let st = state();
    loop {
        let notified = st.notify.notified();
        if let Some(s) = pending() {
            return s;
        }
        notified.await;
    }
}

/// The stop request waiting to be handled, if any (checked by the Lua hook).
pub fn pending() -> Option<Signal> {
    Signal::from_number(state().pending.load(Ordering::SeqCst))
}

/// Marks the pending request as handled.
pub fn clear() {
    state().pending.store(0, Ordering::SeqCst);
}
