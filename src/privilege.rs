//! Running the extension's own SQL with the extension's rights. A user who
//! may read and write a foreign table needs no privilege on the catalog or
//! the shadow tables: those queries run as their owner, with `search_path`
//! pinned (as a SECURITY DEFINER function with SET search_path would), so
//! no object of the user's can stand in for a built-in.

use pgrx::pg_sys;

/// The bootstrap superuser, owner of the extension's catalog.
pub fn catalog_owner() -> pg_sys::Oid {
    pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID)
}

/// Runs `f` as `user`; restores the user (and search_path) afterwards, also
/// when `f` unwinds.
pub fn run_as<R>(user: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    struct Restore {
        user: pg_sys::Oid,
        context: i32,
        guc_level: i32,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            unsafe {
                // On an error the transaction's abort restores the settings.
                if !std::thread::panicking() {
                    pg_sys::AtEOXact_GUC(true, self.guc_level);
                }
                pg_sys::SetUserIdAndSecContext(self.user, self.context);
            }
        }
    }
    let mut user_before = pg_sys::InvalidOid;
    let mut context = 0;
    let restore = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user_before, &mut context);
        let guc_level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        pg_sys::SetUserIdAndSecContext(user, context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
        Restore { user: user_before, context, guc_level }
    };
    let result = f();
    drop(restore);
    result
}
