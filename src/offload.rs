//! One helper thread for the sync worker's work that needs no Postgres:
//! the HTTP exchanges of its requests, reading a page's JSON into records
//! and encoding them as jsonb. On the worker's own thread, a reply that
//! came while a page was being applied waited for the apply to end, and
//! then its reading held up the next request; on the helper it is read
//! while the worker applies.
//!
//! What runs here never calls Postgres (nothing of Postgres is
//! thread-safe), and the thread blocks every signal, so Postgres's signal
//! handlers only ever run on the worker's thread (threads it starts, for
//! name lookups, inherit that mask). Only the worker uses it (`enable`);
//! backends do their few requests on their own thread. A panic in a job
//! comes back as an error.

use crate::error::{Result, SequinError};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use tokio::runtime::Handle;

static ENABLED: AtomicBool = AtomicBool::new(false);
static HELPER: OnceLock<std::result::Result<Handle, String>> = OnceLock::new();

/// Lets this process hand work to the helper thread (the sync worker).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether this process hands work to the helper thread.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Runs `work` on the helper thread and waits (as a future) for its result.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    spawn(async move { work() }).await
}

/// Runs `future` on the helper thread's runtime and waits for its output.
/// Dropping the wait (the worker abandons a fetch) drops the future too.
pub async fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Result<T> {
    let handle = HELPER.get_or_init(start).as_ref().map_err(|why| SequinError::internal(why.clone()))?;
    let mut task = AbortOnDrop(handle.spawn(future));
    match (&mut task.0).await {
        Ok(value) => Ok(value),
        Err(error) if error.is_panic() => {
            Err(SequinError::internal(format!("the sync's helper thread failed: {}", panic_text(error.into_panic()))))
        }
        Err(_) => Err(SequinError::internal("the sync's helper thread dropped a job")),
    }
}

/// Frees `value` on the helper thread, where its memory was allocated: a
/// page's records freed on the worker's thread cost a tenth of its time
/// (glibc returns each block to the helper's arena under a lock).
pub fn discard<T: Send + 'static>(value: T) {
    if let Some(Ok(handle)) = HELPER.get() {
        // Detached: nothing waits for it.
        drop(handle.spawn(async move { drop(value) }));
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a panic said.
fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (_, Some(text)) => text.clone(),
        _ => "a panic".into(),
    }
}

/// Starts the helper thread, with every signal blocked (a thread inherits
/// the signal mask of the one that creates it), running a runtime of its
/// own for as long as the process lives.
fn start() -> std::result::Result<Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the sync's helper thread: {e}"))?;
    let handle = runtime.handle().clone();
    let spawned = with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("sequin sync helper".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
    });
    spawned.map_err(|e| format!("could not start the sync's helper thread: {e}"))?;
    Ok(handle)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn jobs_run_on_one_other_thread_and_a_panic_is_an_error() {
        let runtime = runtime();
        let here = std::thread::current().id();
        let first = runtime.block_on(super::run(|| std::thread::current().id())).unwrap();
        let second = runtime.block_on(super::run(|| std::thread::current().id())).unwrap();
        assert_ne!(first, here);
        assert_eq!(first, second);
        let failed = runtime.block_on(super::run(|| -> u8 { panic!("boom") })).unwrap_err();
        assert!(failed.message.contains("boom"), "{}", failed.message);
        assert_eq!(runtime.block_on(super::run(|| 7)).unwrap(), 7);
    }

    #[test]
    fn a_job_whose_wait_is_dropped_is_dropped_too() {
        let runtime = runtime();
        let (sender, mut dropped) = tokio::sync::oneshot::channel::<()>();
        runtime.block_on(async {
            let job = super::spawn(async move {
                let _sender = sender;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
            let _ = tokio::time::timeout(Duration::from_millis(20), job).await;
        });
        let gone = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), &mut dropped).await });
        assert!(matches!(gone, Ok(Err(_))), "the job still runs");
    }

    #[test]
    fn the_helper_thread_blocks_every_signal() {
        let blocked = runtime()
            .block_on(super::run(|| unsafe {
                let mut mask: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
                [libc::SIGTERM, libc::SIGUSR1, libc::SIGURG, libc::SIGINT].map(|s| libc::sigismember(&mask, s) == 1)
            }))
            .unwrap();
        assert_eq!(blocked, [true; 4]);
    }
}
