//! Ctrl-C and SIGTERM during an apply session. The first signal only sets a flag
//! that `execute` reads before starting each task (running steps finish, the locks
//! are released, the report says what was not started); a second one ends the
//! process at once with status 130, after saying which nodes' locks may remain.
//! Before a session the signals keep their default (at the confirmation prompt
//! Ctrl-C ends geartopo with nothing changed and no lock taken), except when the
//! read takes the locks (`--auto-approve`): then this is installed before it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Set by the first SIGINT or SIGTERM once `install` ran.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// Written by the second signal before `_exit(130)`: prepared beforehand, since a
/// signal handler may not allocate.
static LAST_WORDS: OnceLock<Vec<u8>> = OnceLock::new();

const FIRST: &[u8] = b"\ngeartopo: interrupted: running steps finish, no new step starts, then the locks are released (interrupt again to exit at once)\n";

extern "C" fn on_signal(_sig: libc::c_int) {
    // Only async-signal-safe calls here: atomics, write(2), _exit(2).
    let n = SIGNALS.fetch_add(1, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
    let say = |b: &[u8]| unsafe {
        libc::write(2, b.as_ptr().cast(), b.len());
    };
    if n == 0 {
        say(FIRST);
    } else {
        if let Some(words) = LAST_WORDS.get() {
            say(words);
        }
        unsafe { libc::_exit(130) };
    }
}

/// Catches SIGINT and SIGTERM for the rest of the process; `nodes` are the nodes
/// whose locks a second signal would leave behind, `file` the topology, for the
/// command that removes them.
pub fn install(nodes: &[String], file: &str) {
    let _ = LAST_WORDS.set(
        format!(
            "\ngeartopo: interrupted again: exiting now. The apply locks of these nodes may remain: {}. \
             Check that no step still runs, then remove them with `geartopo force-unlock {file}`.\n",
            nodes.join(", ")
        )
        .into_bytes(),
    );
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SA_RESTART: a read or write the signal interrupts goes on rather than
        // failing with EINTR in the middle of a step.
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
}

/// Whether a signal asked to stop.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
