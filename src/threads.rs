//! Threads the extension starts block every signal from their first
//! instruction (they inherit the mask of the thread that starts them):
//! Postgres's signal handlers are written for the process's one thread,
//! and a signal sent to the process (a cancel, a timeout's SIGALRM, the
//! postmaster's SIGTERM) then always reaches it there.

/// Starts `body` on a thread of its own, named `name` (at most 15
/// characters show in `top -H`), with every signal blocked.
pub fn spawn<T: Send + 'static>(name: &str, body: impl FnOnce() -> T + Send + 'static) -> std::io::Result<std::thread::JoinHandle<T>> {
    with_signals_blocked(|| std::thread::Builder::new().name(name.into()).spawn(body))
}

fn with_signals_blocked<R>(body: impl FnOnce() -> R) -> R {
    // SAFETY: sigset_t is plain data that sigfillset initialises;
    // pthread_sigmask only changes this thread's mask, restored below.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut before);
        let result = body();
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        result
    }
}

/// Which of the signals Postgres handles this thread blocks (SIGHUP,
/// SIGINT, SIGUSR1, SIGALRM, SIGTERM, SIGURG).
#[cfg(test)]
pub fn blocked_signals() -> [bool; 6] {
    // SAFETY: as above; this only reads the mask.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        [libc::SIGHUP, libc::SIGINT, libc::SIGUSR1, libc::SIGALRM, libc::SIGTERM, libc::SIGURG]
            .map(|s| libc::sigismember(&mask, s) == 1)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_thread_started_here_blocks_every_signal_and_its_starter_keeps_its_mask() {
        let before = super::blocked_signals();
        let inside = super::spawn("sequin test", super::blocked_signals).unwrap().join().unwrap();
        assert_eq!(inside, [true; 6]);
        assert_eq!(super::blocked_signals(), before);
        assert_ne!(before, [true; 6], "the test's own thread blocks nothing of these");
    }
}
