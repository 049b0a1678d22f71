//! Which databases have a sync worker, in shared memory. The launcher
//! (`launcher.rs`) starts one worker per database that has the extension;
//! a worker records here whether it runs, and why not when it does not, so
//! that `sequin.sync_status` in that database can say so. Backends ask for
//! a worker (CREATE EXTENSION, IMPORT, sync_now) and hold one off while a
//! statement needs its database to themselves (DROP DATABASE, CREATE
//! DATABASE … TEMPLATE, ALTER DATABASE … RENAME).

use crate::time::now_us;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};
use std::cell::RefCell;

/// Databases known at once: those with a worker, with the extension but no
/// worker (over the bound, no free process), or asking for one. The bound
/// itself is `sequin.max_databases`, at most this.
pub const SLOTS: usize = 128;

/// How long a database statement may hold its database's worker off
/// before the launcher starts it again anyway (the statement's backend
/// died without releasing it).
const HOLD_AT_MOST_US: i64 = 600_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Free,
    /// The launcher started a worker; it has not looked at the database yet.
    Starting,
    Running,
    /// The database has no sequin_fdw (any more).
    NoExtension,
    /// The installed SQL is another version than the library.
    OtherVersion,
    /// `sequin.max_databases` workers run already.
    OverLimit,
    /// Postgres had no free background worker process (max_worker_processes).
    NoProcess,
    /// Stopped with an error; started again after a pause.
    Failed,
    /// Stopped by a signal or told to stop; started again once allowed.
    Stopped,
}

#[derive(Clone, Copy)]
struct Slot {
    database: u32,
    state: State,
    pid: i32,
    /// The worker's latch (in its PGPROC), 0 when none runs.
    latch: usize,
    /// A backend asked for a worker: the launcher starts one (or looks
    /// again whether the database has the extension).
    wanted: bool,
    /// The worker must stop: its database is needed without connections.
    stop: bool,
    /// The launcher starts no worker here before this time (unix µs).
    not_before_us: i64,
    failures: u32,
    /// The installed version, when it is not the library's.
    installed: [u8; 16],
}

impl Slot {
    const FREE: Slot = Slot {
        database: 0,
        state: State::Free,
        pid: 0,
        latch: 0,
        wanted: false,
        stop: false,
        not_before_us: 0,
        failures: 0,
        installed: [0; 16],
    };
}

#[derive(Clone, Copy)]
pub struct Registry {
    launcher_latch: usize,
    slots: [Slot; SLOTS],
}

unsafe impl PGRXSharedMemory for Registry {}

static REGISTRY: PgLwLock<Registry> = unsafe { PgLwLock::new(c"sequin_fdw sync workers") };

pub fn init() {
    pg_shmem_init!(REGISTRY = Registry { launcher_latch: 0, slots: [Slot::FREE; SLOTS] });
}

fn my_database() -> u32 {
    u32::from(unsafe { pg_sys::MyDatabaseId })
}

fn set_latch(latch: usize) {
    if latch != 0 {
        // A latch lives in a PGPROC, in shared memory: one since reused by
        // another process only gets a spurious wake-up.
        unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
    }
}

impl Registry {
    fn find(&mut self, database: u32) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.state != State::Free && s.database == database)
    }

    /// The slot of `database`, claimed when it has none; None when all are
    /// taken.
    fn claim(&mut self, database: u32) -> Option<&mut Slot> {
        let index = self
            .slots
            .iter()
            .position(|s| s.state != State::Free && s.database == database)
            .or_else(|| self.slots.iter().position(|s| s.state == State::Free))?;
        let slot = &mut self.slots[index];
        if slot.state == State::Free {
            *slot = Slot { database, state: State::NoExtension, ..Slot::FREE };
        }
        Some(slot)
    }

    fn running(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s.state, State::Running)).count()
    }
}

// ---- Backends ----------------------------------------------------------

thread_local! {
    /// What this backend's transaction asks of the launcher when it commits.
    static AT_COMMIT: RefCell<AtCommit> = const { RefCell::new(AtCommit { want: false, held: Vec::new() }) };
}

struct AtCommit {
    want: bool,
    /// Databases held off by a statement of this transaction.
    held: Vec<u32>,
}

/// Asks for a worker in this database once the transaction commits (its
/// catalog is then visible to a new worker).
pub fn want_worker_at_commit() {
    AT_COMMIT.with(|a| a.borrow_mut().want = true);
}

pub fn register_callbacks() {
    unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => transaction_ended(true),
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => transaction_ended(false),
        _ => {}
    }
}

/// Ends the current transaction's requests: on commit, asks for a worker;
/// either way, releases the databases it held off.
fn transaction_ended(committed: bool) {
    let (want, held) = AT_COMMIT.with(|a| {
        let mut a = a.borrow_mut();
        (std::mem::take(&mut a.want), std::mem::take(&mut a.held))
    });
    if !(want && committed) && held.is_empty() {
        return;
    }
    let latch = {
        let mut registry = REGISTRY.exclusive();
        for database in held {
            if let Some(slot) = registry.find(database) {
                slot.stop = false;
                slot.not_before_us = 0;
                slot.wanted = true;
            }
        }
        if want && committed {
            let database = my_database();
            match registry.claim(database) {
                Some(slot) if slot.state == State::Running => set_latch(slot.latch),
                Some(slot) => slot.wanted = true,
                None => {}
            }
        }
        registry.launcher_latch
    };
    set_latch(latch);
}

/// Stops the worker of `database` and keeps it stopped until this
/// transaction ends: the statement needs the database without connections.
/// Waits (at most a few seconds) for it to go.
pub fn hold_off(database: pg_sys::Oid) {
    let database = u32::from(database);
    let latch = {
        let mut registry = REGISTRY.exclusive();
        let Some(slot) = registry.claim(database) else { return };
        slot.stop = true;
        slot.not_before_us = now_us() + HOLD_AT_MOST_US;
        slot.latch
    };
    AT_COMMIT.with(|a| a.borrow_mut().held.push(database));
    set_latch(latch);
    // Postgres itself waits five seconds for other sessions to leave; the
    // worker leaves within one look at its latch.
    for _ in 0..100 {
        let running = REGISTRY.share().slots.iter().any(|s| s.database == database && s.state == State::Running);
        if !running {
            break;
        }
        unsafe {
            pg_sys::pg_usleep(50_000);
            pg_sys::check_for_interrupts!();
        }
    }
}

/// Wakes this database's worker (a record to re-read, sync_now, a token).
pub fn wake_worker() {
    let database = my_database();
    let latch = REGISTRY.share().slots.iter().find(|s| s.state == State::Running && s.database == database).map(|s| s.latch);
    set_latch(latch.unwrap_or(0));
}

/// Wakes this database's worker, and asks for one at commit if none runs
/// (sync_now, resync, resume: a person is waiting for the sync).
pub fn wake_or_start_worker() {
    wake_worker();
    want_worker_at_commit();
}

/// Why this database will not be synced, when its worker cannot run (the
/// bound is reached): a WARNING at CREATE EXTENSION and IMPORT.
pub fn not_synced_warning() -> Option<String> {
    let database = my_database();
    let max = crate::gucs::max_databases();
    let registry = REGISTRY.share();
    let running_here = registry.slots.iter().any(|s| s.database == database && s.state == State::Running);
    (!running_here && registry.running() >= max).then(|| {
        format!(
            "this database will not be synced: sequin_fdw syncs at most sequin.max_databases = {max} databases, and {} are synced already; raise the setting, or drop the extension in a database that does not need it",
            registry.running()
        )
    })
}

/// What `sequin.sync_status` says of this database's worker: its state
/// (`running`, `starting`, `standby`, or why it does not run), its pid and
/// a sentence for a person.
pub fn status() -> (&'static str, Option<i32>, String) {
    if unsafe { pg_sys::RecoveryInProgress() } {
        return ("standby", None, "This server is a standby: the primary's sync worker syncs, and its progress shows here.".into());
    }
    let database = my_database();
    let max = crate::gucs::max_databases();
    let registry = REGISTRY.share();
    let Some(slot) = registry.slots.iter().find(|s| s.state != State::Free && s.database == database) else {
        return if registry.launcher_latch == 0 {
            ("no launcher", None, "The sequin launcher is not running (see the server log): nothing syncs until it is started again.".into())
        } else {
            ("starting", None, "The launcher starts this database's sync worker within seconds.".into())
        };
    };
    match slot.state {
        State::Running => ("running", Some(slot.pid), format!("sync worker running (pid {})", slot.pid)),
        // The extension is here (this runs in it): a stale NoExtension was
        // recorded before CREATE EXTENSION, whose commit asked for a worker.
        State::Starting | State::Free | State::NoExtension => {
            ("starting", None, "The launcher starts this database's sync worker within seconds.".into())
        }
        State::OtherVersion => {
            let installed = String::from_utf8_lossy(&slot.installed).trim_end_matches('\0').to_string();
            (
                "other version",
                None,
                format!(
                    "sequin_fdw {installed} is installed here but the server runs the library of {}: run ALTER EXTENSION sequin_fdw UPDATE.",
                    env!("CARGO_PKG_VERSION")
                ),
            )
        }
        State::OverLimit => (
            "over limit",
            None,
            format!(
                "Not synced: {} databases are synced already (sequin.max_databases = {max}). Raise it, or drop the extension in a database that does not need it.",
                registry.running()
            ),
        ),
        State::NoProcess => (
            "no process",
            None,
            format!(
                "Not synced: Postgres has no free background worker process (max_worker_processes = {}). Raise it and restart the server.",
                unsafe { pg_sys::max_worker_processes }
            ),
        ),
        State::Stopped => ("starting", None, "The sync worker was stopped; the launcher starts it again within seconds.".into()),
        State::Failed => (
            "failed",
            None,
            format!("The sync worker stopped with an error ({} times in a row; see the server log); it is started again shortly.", slot.failures),
        ),
    }
}

// ---- The sync worker ---------------------------------------------------

/// Whether a worker that found the extension (in this version) may sync
/// its database: it may unless the bound is reached.
pub fn worker_running(latch: *mut pg_sys::Latch) -> bool {
    let database = my_database();
    let max = crate::gucs::max_databases();
    let mut registry = REGISTRY.exclusive();
    let over = registry.running() >= max;
    let Some(slot) = registry.claim(database) else { return false };
    if over {
        slot.state = State::OverLimit;
        false
    } else {
        slot.state = State::Running;
        slot.pid = unsafe { pg_sys::MyProcPid };
        slot.latch = latch as usize;
        slot.wanted = false;
        slot.failures = 0;
        true
    }
}

/// The worker ends, saying why (`State::Failed` from the exit callback when
/// it ends with an ERROR). Wakes the launcher, which may start another.
pub fn worker_stopped(state: State, installed: Option<&str>) {
    let database = my_database();
    let pid = unsafe { pg_sys::MyProcPid };
    let latch = {
        let mut registry = REGISTRY.exclusive();
        if let Some(slot) = registry.find(database) {
            // Only the worker's own slot (a stale exit callback of a worker
            // long gone must not overwrite a newer one's state).
            if slot.pid == pid || slot.state == State::Starting {
                slot.latch = 0;
                slot.pid = 0;
                match state {
                    State::Failed => {
                        slot.failures = slot.failures.saturating_add(1);
                        let pause_s = 5i64 << slot.failures.min(6);
                        slot.not_before_us = slot.not_before_us.max(now_us() + pause_s * 1_000_000);
                    }
                    State::OtherVersion => {
                        let mut text = [0u8; 16];
                        let bytes = installed.unwrap_or("?").as_bytes();
                        let n = bytes.len().min(text.len());
                        text[..n].copy_from_slice(&bytes[..n]);
                        slot.installed = text;
                    }
                    State::Stopped => {
                        slot.not_before_us = slot.not_before_us.max(now_us() + 5_000_000);
                    }
                    _ => {}
                }
                slot.state = state;
                if state == State::NoExtension {
                    // Nothing to remember: CREATE EXTENSION asks again.
                    *slot = Slot::FREE;
                }
            }
        }
        registry.launcher_latch
    };
    set_latch(latch);
}

/// True when the worker must stop (its database is needed alone).
pub fn told_to_stop() -> bool {
    let database = my_database();
    REGISTRY.share().slots.iter().any(|s| s.database == database && s.state == State::Running && s.stop)
}

// ---- The launcher ------------------------------------------------------

pub fn launcher_started(latch: *mut pg_sys::Latch) {
    let mut registry = REGISTRY.exclusive();
    registry.launcher_latch = latch as usize;
}

pub fn launcher_stopped() {
    REGISTRY.exclusive().launcher_latch = 0;
}

/// Decides, for the databases that exist now, which to start a worker in:
/// those never looked at by this launcher (`unseen`), those asking for one,
/// and those whose worker could not run and may now; at most
/// `starting_at_most` not yet settled at once. Forgets databases that are
/// gone. Marks the chosen ones Starting.
pub fn plan(existing: &[u32], unseen: &[u32], starting_at_most: usize) -> Vec<u32> {
    REGISTRY.exclusive().plan(existing, unseen, starting_at_most, crate::gucs::max_databases(), now_us())
}

impl Registry {
    fn plan(&mut self, existing: &[u32], unseen: &[u32], starting_at_most: usize, max: usize, now: i64) -> Vec<u32> {
        for slot in self.slots.iter_mut() {
            if slot.state != State::Free && !existing.contains(&slot.database) && slot.state != State::Running {
                *slot = Slot::FREE;
            }
        }
        let running = self.running();
        let mut starting = self.slots.iter().filter(|s| s.state == State::Starting).count();
        let mut start = Vec::new();
        for &database in existing {
            if starting >= starting_at_most {
                break;
            }
            let slot = self.find(database).map(|s| *s);
            let go = match slot {
                None => unseen.contains(&database),
                Some(s) if s.not_before_us > now || s.stop => false,
                Some(s) => match s.state {
                    State::Running | State::Starting | State::Free => false,
                    State::OverLimit => running < max,
                    State::NoProcess | State::Failed | State::Stopped => true,
                    State::NoExtension | State::OtherVersion => s.wanted || unseen.contains(&database),
                },
            };
            if go {
                if let Some(slot) = self.claim(database) {
                    slot.state = State::Starting;
                    slot.wanted = false;
                    slot.pid = 0;
                    start.push(database);
                    starting += 1;
                }
            }
        }
        start
    }
}

/// The launcher could not start a worker for `database`: no free process.
pub fn no_process(database: u32) {
    if let Some(slot) = REGISTRY.exclusive().find(database) {
        slot.state = State::NoProcess;
    }
}

/// A worker the launcher started has ended without saying why (it never
/// reached the database: dropped meanwhile, or no connection allowed).
pub fn vanished(database: u32) {
    if let Some(slot) = REGISTRY.exclusive().find(database) {
        if slot.state == State::Starting {
            slot.state = State::Failed;
            slot.failures = slot.failures.saturating_add(1);
            slot.not_before_us = now_us() + (5i64 << slot.failures.min(6)) * 1_000_000;
        }
    }
}

/// The soonest time a held-off or failed database may get a worker again.
pub fn next_retry_us() -> Option<i64> {
    REGISTRY
        .share()
        .slots
        .iter()
        .filter(|s| matches!(s.state, State::Failed | State::Stopped) || s.stop)
        .map(|s| s.not_before_us)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Box<Registry> {
        Box::new(Registry { launcher_latch: 0, slots: [Slot::FREE; SLOTS] })
    }

    fn set(registry: &mut Registry, database: u32, state: State) {
        let slot = registry.claim(database).unwrap();
        slot.state = state;
    }

    #[test]
    fn a_database_is_looked_at_once_then_only_when_asked() {
        let mut r = registry();
        assert_eq!(r.plan(&[1, 2], &[1, 2], 4, 8, 0), vec![1, 2]);
        // Neither has the extension: their workers said so and left.
        set(&mut r, 1, State::NoExtension);
        set(&mut r, 2, State::NoExtension);
        assert_eq!(r.plan(&[1, 2], &[], 4, 8, 0), Vec::<u32>::new());
        r.claim(2).unwrap().wanted = true;
        assert_eq!(r.plan(&[1, 2], &[], 4, 8, 0), vec![2]);
    }

    #[test]
    fn a_few_databases_start_at_a_time() {
        let mut r = registry();
        let all: Vec<u32> = (1..=10).collect();
        assert_eq!(r.plan(&all, &all, 4, 8, 0), vec![1, 2, 3, 4]);
        // The same four are still starting: nobody else yet.
        assert_eq!(r.plan(&all, &all[4..], 4, 8, 0), Vec::<u32>::new());
    }

    #[test]
    fn a_database_over_the_bound_waits_for_room() {
        let mut r = registry();
        set(&mut r, 1, State::Running);
        set(&mut r, 2, State::Running);
        set(&mut r, 3, State::OverLimit);
        assert_eq!(r.plan(&[1, 2, 3], &[], 4, 2, 0), Vec::<u32>::new());
        r.claim(2).unwrap().state = State::NoExtension;
        assert_eq!(r.plan(&[1, 2, 3], &[], 4, 2, 0), vec![3]);
    }

    #[test]
    fn a_failed_or_held_worker_waits_for_its_time() {
        let mut r = registry();
        set(&mut r, 1, State::Failed);
        r.claim(1).unwrap().not_before_us = 1_000;
        assert_eq!(r.plan(&[1], &[], 4, 8, 999), Vec::<u32>::new());
        assert_eq!(r.plan(&[1], &[], 4, 8, 1_000), vec![1]);
        set(&mut r, 2, State::Stopped);
        r.claim(2).unwrap().stop = true;
        assert_eq!(r.plan(&[2], &[], 4, 8, i64::MAX), Vec::<u32>::new());
    }

    #[test]
    fn a_dropped_database_is_forgotten_unless_its_worker_still_runs() {
        let mut r = registry();
        set(&mut r, 1, State::Failed);
        set(&mut r, 2, State::Running);
        r.plan(&[], &[], 4, 8, 0);
        assert!(r.find(1).is_none());
        assert!(r.find(2).is_some());
    }
}
