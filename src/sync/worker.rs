//! A sync worker: one per database that has the extension, started by the
//! launcher (`launcher.rs`). It checks that the extension is installed in
//! the library's version, then runs the engine until it is stopped or the
//! extension is dropped.

use super::{credentials, databases, engine};
use crate::gucs;
use databases::State;
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static STOPPING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The worker has said why it ends (else the exit callback says it failed).
    static REPORTED: Cell<bool> = const { Cell::new(false) };
}

/// True once SIGTERM arrived (remembered: pgrx's flag resets when read), or
/// a statement needs the database without connections.
pub fn stop_requested() -> bool {
    if BackgroundWorker::sigterm_received() || databases::told_to_stop() {
        STOPPING.store(true, Ordering::SeqCst);
    }
    STOPPING.load(Ordering::SeqCst)
}

fn stopped(state: State, installed: Option<&str>) {
    REPORTED.with(|r| r.set(true));
    databases::worker_stopped(state, installed);
}

/// An ERROR that ends the worker: the launcher starts it again later.
#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, _arg: pg_sys::Datum) {
    if !REPORTED.with(Cell::get) {
        stopped(State::Failed, None);
    }
}

/// Settings of every transaction the worker runs, set once for its session.
/// A user's open transaction that wrote a row must not stall the worker: a
/// page that waits 2 s for a lock fails and is retried later. Nothing the
/// worker commits needs to wait for the disk: a crash loses a page and its
/// cursor together, and the page is fetched again.
fn session_settings() {
    // The worker runs the same statements all day, each through a plan it
    // keeps (plans.rs): a generic plan is made once, where a custom one
    // would be made for every call.
    for (name, value) in [(c"lock_timeout", c"2s"), (c"synchronous_commit", c"off"), (c"plan_cache_mode", c"force_generic_plan")] {
        unsafe {
            pg_sys::SetConfigOption(name.as_ptr(), value.as_ptr(), pg_sys::GucContext::PGC_SUSET, pg_sys::GucSource::PGC_S_SESSION);
        }
    }
    keep_freed_memory();
    crate::offload::enable();
}

/// A backfill page's buffers (its JSON, the page as jsonb) are a few
/// hundred kilobytes each, allocated and freed for every page. glibc maps
/// allocations that large anew each time and gives freed memory back to
/// the kernel, so every page paid for fresh zeroed pages (a tenth of the
/// worker's time in page faults); in this process they are kept for reuse
/// instead. The backends' allocator settings are left as they are.
fn keep_freed_memory() {
    extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    // glibc's malloc.h: M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3.
    const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
    const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// The installed version of the extension in this database, if any.
fn installed_version() -> Option<String> {
    BackgroundWorker::transaction(|| {
        Spi::get_one::<String>("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'sequin_fdw'").ok().flatten()
    })
}

fn database_name() -> String {
    BackgroundWorker::transaction(|| {
        Spi::get_one::<String>("SELECT current_database()::text").ok().flatten().unwrap_or_default()
    })
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn sequin_sync_worker_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = pg_sys::Oid::from(arg.value() as u32);
    unsafe { pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(0)) };
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(database), None);
    let name = database_name();
    match installed_version() {
        None => return stopped(State::NoExtension, None),
        Some(version) if version != env!("CARGO_PKG_VERSION") => {
            warning!(
                "sequin_fdw {version} is installed in database \"{name}\" but the library is {}: the sync waits for ALTER EXTENSION sequin_fdw UPDATE",
                env!("CARGO_PKG_VERSION")
            );
            return stopped(State::OtherVersion, Some(&version));
        }
        Some(_) => {}
    }
    if !databases::worker_running(unsafe { pg_sys::MyLatch }) {
        REPORTED.with(|r| r.set(true));
        warning!(
            "database \"{name}\" has sequin_fdw but is not synced: sequin.max_databases = {} databases are synced already",
            gucs::max_databases()
        );
        return;
    }
    session_settings();
    log!("sequin sync worker started in database \"{name}\"");
    engine::run(
        &|| Duration::from_millis(gucs::WORKER_NAPTIME_MS.get() as u64),
        &|| {
            if BackgroundWorker::sighup_received() {
                unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            }
            credentials::persist_rotated_tokens();
        },
    );
    if installed_version().is_none() {
        log!("sequin sync worker stopped in database \"{name}\": the extension was dropped");
        stopped(State::NoExtension, None);
    } else {
        log!("sequin sync worker stopped in database \"{name}\"");
        stopped(State::Stopped, None);
    }
}
