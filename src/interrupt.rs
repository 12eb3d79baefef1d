//! Ctrl-C policy shared by the whole process.
//!
//! tokio keeps its SIGINT handler installed once registered, so the process
//! needs one policy: long work that can stop cleanly (a benchmark, a REPL
//! evaluation) registers as a *consumer* and is told to stop; with no consumer,
//! or on a second Ctrl-C, the process exits with 130 as a shell expects.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    consumers: AtomicUsize,
    pending: AtomicBool,
    at_prompt: AtomicBool,
    notify: Notify,
}

static STATE: OnceLock<Arc<State>> = OnceLock::new();

fn state() -> &'static Arc<State> {
    STATE.get_or_init(|| Arc::new(State::default()))
}

/// Starts the listener. Call once, from inside the tokio runtime.
pub fn install() {
    let st = state().clone();
    tokio::spawn(async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if st.at_prompt.load(Ordering::SeqCst) {
                // The tty has already dropped the half-typed line.
                continue;
            }
            let already = st.pending.swap(true, Ordering::SeqCst);
            if st.consumers.load(Ordering::SeqCst) == 0 || already {
                crate::flush_std();
                eprintln!("\ninterrupted");
                std::process::exit(130);
            }
            st.notify.notify_waiters();
        }
    });
}

/// Held while some work wants to handle Ctrl-C itself.
pub struct Guard(());

impl Guard {
    pub fn new() -> Guard {
        let st = state();
        st.consumers.fetch_add(1, Ordering::SeqCst);
        Guard(())
    }

    /// Resolves at the next Ctrl-C (or at once if one is pending).
    pub async fn interrupted(&self) {
        let st = state();
        loop {
            let notified = st.notify.notified();
            if st.pending.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
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
            st.pending.store(false, Ordering::SeqCst);
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

/// True while a Ctrl-C is waiting to be handled (checked by the Lua hook).
pub fn pending() -> bool {
    state().pending.load(Ordering::SeqCst)
}

/// Marks the pending Ctrl-C as handled.
pub fn clear() {
    state().pending.store(false, Ordering::SeqCst);
}
