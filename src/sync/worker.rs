//! The background worker: registration and the main loop, in the shape of
//! pg_cron's — check signals, do the due work, sleep on the latch.

use super::{credentials, poll, reread};
use crate::reconcile;
use crate::gucs;
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

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn sequin_sync_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::database();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    log!("sequin sync worker started in database \"{database}\"");
    reconcile::set_worker_latch(unsafe { pg_sys::MyLatch });
    while !stop_requested() {
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        credentials::persist_rotated_tokens();
        reread::reread_queued();
        let naptime = Duration::from_millis(gucs::WORKER_NAPTIME_MS.get() as u64);
        let wait = poll::poll_due_collections().map_or(naptime, |next| next.min(naptime));
        if stop_requested() || !BackgroundWorker::wait_latch(Some(wait.max(Duration::from_millis(10)))) {
            break;
        }
    }
    reconcile::set_worker_latch(std::ptr::null_mut());
    log!("sequin sync worker stopped");
}
