//! The background worker: registration, signals and the latch; the work
//! itself is the engine's.

use super::{credentials, engine};
use crate::gucs;
use crate::reconcile;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const WORKER_NAME: &str = "sequin sync";

pub fn register() {
    BackgroundWorkerBuilder::new(WORKER_NAME)
        .set_type(WORKER_NAME)
        .set_library("sequin_fdw")
        .set_function("sequin_sync_worker_main")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

static STOPPING: AtomicBool = AtomicBool::new(false);

/// True once SIGTERM arrived (remembered: pgrx's flag resets when read).
pub fn stop_requested() -> bool {
    if BackgroundWorker::sigterm_received() {
        STOPPING.store(true, Ordering::SeqCst);
    }
    STOPPING.load(Ordering::SeqCst)
}

/// Settings of every transaction the worker runs, set once for its session.
/// A user's open transaction that wrote a row must not stall the worker: a
/// page that waits 2 s for a lock fails and is retried later. Nothing the
/// worker commits needs to wait for the disk: a crash loses a page and its
/// cursor together, and the page is fetched again.
fn session_settings() {
    for (name, value) in [(c"lock_timeout", c"2s"), (c"synchronous_commit", c"off")] {
        unsafe {
            pg_sys::SetConfigOption(name.as_ptr(), value.as_ptr(), pg_sys::GucContext::PGC_SUSET, pg_sys::GucSource::PGC_S_SESSION);
        }
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn sequin_sync_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::database();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    session_settings();
    log!("sequin sync worker started in database \"{database}\"");
    reconcile::set_worker_latch(unsafe { pg_sys::MyLatch });
    engine::run(
        &|| Duration::from_millis(gucs::WORKER_NAPTIME_MS.get() as u64),
        &|| {
            if BackgroundWorker::sighup_received() {
                unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            }
            credentials::persist_rotated_tokens();
        },
    );
    reconcile::set_worker_latch(std::ptr::null_mut());
    log!("sequin sync worker stopped");
}
