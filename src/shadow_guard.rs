//! Shadow tables belong to the extension: a statement trigger on each one
//! refuses INSERT, UPDATE, DELETE and TRUNCATE from anyone (superusers
//! included) unless the extension itself is applying API records. Reads stay
//! open.

use crate::error::{ErrorKind, SequinError};
use pgrx::pg_sys;
use std::cell::Cell;
use std::ffi::CStr;

thread_local! {
    static APPLYING: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f` as the extension applying API records (nests; ends with `f`,
/// also when it unwinds).
pub fn applying<R>(f: impl FnOnce() -> R) -> R {
    struct Applying;
    impl Drop for Applying {
        fn drop(&mut self) {
            APPLYING.with(|a| a.set(a.get().saturating_sub(1)));
        }
    }
    APPLYING.with(|a| a.set(a.get() + 1));
    let _applying = Applying;
    f()
}

/// The trigger statement every shadow table gets when it is created.
pub fn trigger_sql(shadow_table: &str) -> [String; 2] {
    [
        format!(
            "CREATE TRIGGER sequin_shadow_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {shadow_table}
               FOR EACH STATEMENT EXECUTE FUNCTION sequin.shadow_guard()"
        ),
        // ALWAYS: also with session_replication_role = replica.
        format!("ALTER TABLE {shadow_table} ENABLE ALWAYS TRIGGER sequin_shadow_guard"),
    ]
}

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_sequin_shadow_guard() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// `sequin.shadow_guard()`: the trigger function.
#[no_mangle]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn sequin_shadow_guard(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    if APPLYING.with(Cell::get) > 0 {
        return pg_sys::Datum::from(0);
    }
    let context = (*fcinfo).context;
    let table = if !context.is_null() && (*context).type_ == pg_sys::NodeTag::T_TriggerData {
        let relation = (*(context as *mut pg_sys::TriggerData)).tg_relation;
        CStr::from_ptr((*(*relation).rd_rel).relname.data.as_ptr()).to_string_lossy().into_owned()
    } else {
        "?".to_string()
    };
    SequinError::new(
        ErrorKind::ShadowTableWrite,
        format!("permission denied for table {table}: it is a sequin_fdw shadow table"),
    )
    .with_detail("Only the extension writes shadow tables, so that they always match the API.")
    .with_hint("Write through the foreign table: its writes go to the API first. Reading the shadow table is fine.")
    .raise()
}
