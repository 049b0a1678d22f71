//! The launcher: one background worker, connected to no database, that
//! starts a sync worker in every database that has the extension (as
//! TimescaleDB's launcher does). It cannot see other databases' catalogs,
//! so a worker it starts in a database it has not looked at yet only checks
//! for the extension and leaves when there is none; after that, a database
//! gets a worker when a backend asks (CREATE EXTENSION, IMPORT, sync_now,
//! the end of a statement that held its worker off) or when one could not
//! run before and may now. `databases.rs` holds the shared state.

use super::databases;
use crate::gucs;
use crate::time::now_us;
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime, DynamicBackgroundWorker,
    SignalWakeFlags,
};
use pgrx::prelude::*;
use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::time::Duration;

pub const LAUNCHER_NAME: &str = "sequin launcher";
pub const WORKER_TYPE: &str = "sequin sync";

/// How often the launcher looks for new databases (one made from a template
/// that has the extension announces itself to no one).
const RESCAN: Duration = Duration::from_secs(10);
/// Workers started at once that have not yet said what they found: a
/// cluster of many databases is looked at a few at a time, leaving worker
/// processes for parallel queries.
const STARTING_AT_MOST: usize = 4;

pub fn register() {
    BackgroundWorkerBuilder::new(LAUNCHER_NAME)
        .set_type(LAUNCHER_NAME)
        .set_library("sequin_fdw")
        .set_function("sequin_launcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

/// The databases a worker may connect to: not templates (a connection to
/// one blocks CREATE DATABASE from it), connections allowed, not half-dropped.
/// Read from pg_database directly: the launcher has no database, so SQL
/// (which needs pg_namespace of some database) cannot run.
fn connectable_databases() -> Vec<(u32, String)> {
    BackgroundWorker::transaction(|| unsafe {
        let mut found = Vec::new();
        let relation = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let scan = pg_sys::systable_beginscan(relation, pg_sys::InvalidOid, false, std::ptr::null_mut(), 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            let header = (*tuple).t_data;
            // GETSTRUCT: the fixed-length columns follow the header; the
            // struct is only read up to its last fixed field.
            let hoff = usize::from((*header).t_hoff);
            if (*tuple).t_len as usize <= hoff + std::mem::size_of::<pg_sys::FormData_pg_database>() - 1 {
                continue;
            }
            let form = (header as *const u8).add(hoff) as *const pg_sys::FormData_pg_database;
            // -2: DATCONNLIMIT_INVALID_DB, a database whose DROP was interrupted.
            if (*form).datistemplate || !(*form).datallowconn || (*form).datconnlimit == -2 {
                continue;
            }
            let name = CStr::from_ptr((*form).datname.data.as_ptr()).to_string_lossy().into_owned();
            found.push((u32::from((*form).oid), name));
        }
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(relation, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        found
    })
}

fn start_worker(database: u32, name: &str) -> Option<DynamicBackgroundWorker> {
    // bgw_name holds 96 bytes; a long database name is cut (on a char boundary).
    let mut title = format!("{WORKER_TYPE} {name}");
    while title.len() > 90 {
        title.pop();
    }
    BackgroundWorkerBuilder::new(&title)
        .set_type(WORKER_TYPE)
        .set_library("sequin_fdw")
        .set_function("sequin_sync_worker_main")
        .set_argument(Some(pg_sys::Datum::from(database)))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic()
        .ok()
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn sequin_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(None, None);
    databases::launcher_started(unsafe { pg_sys::MyLatch });
    if !gucs::obsolete_database_setting().is_empty() {
        warning!(
            "sequin.database is obsolete and ignored: every database that has sequin_fdw is synced (at most sequin.max_databases = {})",
            gucs::max_databases()
        );
    }
    log!("sequin launcher started");
    let mut seen: HashSet<u32> = HashSet::new();
    let mut workers: HashMap<u32, DynamicBackgroundWorker> = HashMap::new();
    loop {
        if BackgroundWorker::sigterm_received() {
            break;
        }
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        // Workers that ended before saying anything (their database was
        // dropped meanwhile, say) are marked so; the rest say it themselves.
        workers.retain(|&database, worker| match worker.pid() {
            Err(BackgroundWorkerStatus::Stopped) => {
                databases::vanished(database);
                false
            }
            _ => true,
        });
        let existing = connectable_databases();
        let ids = existing.iter().map(|(oid, _)| *oid).collect::<Vec<_>>();
        let unseen = ids.iter().copied().filter(|oid| !seen.contains(oid)).collect::<Vec<_>>();
        let planned = databases::plan(&ids, &unseen, STARTING_AT_MOST);
        seen.retain(|oid| ids.contains(oid));
        for database in planned {
            seen.insert(database);
            let name = existing.iter().find(|(oid, _)| *oid == database).map(|(_, n)| n.as_str()).unwrap_or("?");
            match start_worker(database, name) {
                Some(worker) => {
                    workers.insert(database, worker);
                }
                None => databases::no_process(database),
            }
        }
        let wait = databases::next_retry_us()
            .map(|at| Duration::from_micros((at - now_us()).max(50_000) as u64))
            .map_or(RESCAN, |retry| retry.min(RESCAN));
        if !BackgroundWorker::wait_latch(Some(wait)) {
            break;
        }
    }
    databases::launcher_stopped();
    log!("sequin launcher stopped");
}
