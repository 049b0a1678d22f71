//! Two helper threads for the sync worker's work that needs no Postgres.
//! The reader sends its requests and reads the replies' JSON into records
//! as soon as they come; the encoder encodes a page's rows as jsonb. On the
//! worker's own thread, a reply that came while a page was being applied
//! waited for the apply to end, and its reading then held up the next
//! request. Now the next request goes out as soon as a page is read (its
//! cursor is known), while the encoder encodes that page and the worker
//! applies the one before.
//!
//! What runs here never calls Postgres (nothing of Postgres is
//! thread-safe), and the threads block every signal (`threads`), so
//! Postgres's signal handlers only ever run on the worker's thread. Only
//! the worker uses them (`enable`);
//! backends do their few requests on their own thread. A panic in a job
//! comes back as an error.

use crate::error::{Result, SequinError};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use tokio::runtime::Handle;

static ENABLED: AtomicBool = AtomicBool::new(false);
static READER: OnceLock<std::result::Result<Handle, String>> = OnceLock::new();
static ENCODER: OnceLock<std::result::Result<Handle, String>> = OnceLock::new();

/// Lets this process hand work to the helper threads (the sync worker).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether this process hands work to the helper threads.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn reader() -> Result<&'static Handle> {
    READER.get_or_init(|| start("sequin reader")).as_ref().map_err(|why| SequinError::internal(why.clone()))
}

fn encoder() -> Result<&'static Handle> {
    ENCODER.get_or_init(|| start("sequin encoder")).as_ref().map_err(|why| SequinError::internal(why.clone()))
}

/// Runs `future` on the reader thread and waits (as a future) for its
/// output. Dropping the wait (the worker abandons a fetch) drops the
/// future too.
pub async fn spawn<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> Result<T> {
    Job::Running(AbortOnDrop(reader()?.spawn(future))).wait().await
}

/// Starts `work` on the encoder thread; `Job::wait` has its result.
/// Callable from any thread, the reader's too. Should the encoder thread
/// not start, the work is done here and now.
pub fn start_job<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Job<T> {
    match encoder() {
        Ok(encoder) => Job::Running(AbortOnDrop(encoder.spawn(async move { work() }))),
        Err(_) => Job::Done(work()),
    }
}

/// Work under way on a helper thread (dropped, it is abandoned), or done.
pub enum Job<T> {
    Running(AbortOnDrop<T>),
    Done(T),
}

impl<T> Job<T> {
    pub async fn wait(self) -> Result<T> {
        let mut task = match self {
            Job::Running(task) => task,
            Job::Done(value) => return Ok(value),
        };
        match (&mut task.0).await {
            Ok(value) => Ok(value),
            Err(error) if error.is_panic() => {
                Err(SequinError::internal(format!("the sync's helper thread failed: {}", panic_text(error.into_panic()))))
            }
            Err(_) => Err(SequinError::internal("the sync's helper thread dropped a job")),
        }
    }
}

/// Frees `value` on the reader thread, where records are allocated and
/// an allocator frees them fastest (freed on the worker's thread, with
/// glibc, a page's records took a tenth of its time).
pub fn discard<T: Send + 'static>(value: T) {
    if let Some(Ok(handle)) = READER.get() {
        // Detached: nothing waits for it.
        drop(handle.spawn(async move { drop(value) }));
    }
}

pub struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

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

/// Starts a helper thread, with every signal blocked (a thread inherits
/// the signal mask of the one that creates it), running a runtime of its
/// own for as long as the process lives.
fn start(name: &str) -> std::result::Result<Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the sync's helper thread: {e}"))?;
    let handle = runtime.handle().clone();
    let spawned = crate::threads::spawn(name, move || runtime.block_on(std::future::pending::<()>()));
    spawned.map_err(|e| format!("could not start the sync's helper thread: {e}"))?;
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> crate::error::Result<T> {
        super::start_job(work).wait().await
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn jobs_run_on_their_helper_thread_and_a_panic_is_an_error() {
        let runtime = runtime();
        let here = std::thread::current().id();
        let first = runtime.block_on(run(|| std::thread::current().id())).unwrap();
        let second = runtime.block_on(run(|| std::thread::current().id())).unwrap();
        let read = runtime.block_on(super::spawn(async { std::thread::current().id() })).unwrap();
        let started_by_reader = runtime
            .block_on(super::spawn(async { super::start_job(|| std::thread::current().id()) }))
            .unwrap();
        assert_ne!(first, here);
        assert_eq!(first, second);
        assert_ne!(read, first);
        assert_ne!(read, here);
        assert_eq!(runtime.block_on(started_by_reader.wait()).unwrap(), first);
        let failed = runtime.block_on(run(|| -> u8 { panic!("boom") })).unwrap_err();
        assert!(failed.message.contains("boom"), "{}", failed.message);
        assert_eq!(runtime.block_on(run(|| 7)).unwrap(), 7);
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
    fn the_helper_threads_block_every_signal() {
        let runtime = runtime();
        let blocked_signals = crate::threads::blocked_signals;
        assert_eq!(runtime.block_on(run(blocked_signals)).unwrap(), [true; 6]);
        assert_eq!(runtime.block_on(super::spawn(async move { blocked_signals() })).unwrap(), [true; 6]);
    }
}
