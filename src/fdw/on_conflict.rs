//! `INSERT … ON CONFLICT` on a sequin_fdw table, checked right after parse
//! analysis (Postgres would otherwise fail later with a planner error about
//! missing unique indexes). DO UPDATE cannot be done in one API request and
//! is refused with `0A000`; DO NOTHING, with or without a conflict target,
//! means "skip the row when the API reports a duplicate".

use crate::error::{ErrorKind, SequinError};
use pgrx::pg_sys;
use pgrx::PgList;

static mut PREVIOUS_HOOK: pg_sys::post_parse_analyze_hook_type = None;

/// Installs the hook; called once from `_PG_init`.
pub fn install() {
    unsafe {
        PREVIOUS_HOOK = pg_sys::post_parse_analyze_hook;
        pg_sys::post_parse_analyze_hook = Some(after_parse_analysis);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn after_parse_analysis(
    pstate: *mut pg_sys::ParseState,
    query: *mut pg_sys::Query,
    jumble: *mut pg_sys::JumbleState,
) {
    if let Some(previous) = PREVIOUS_HOOK {
        previous(pstate, query, jumble);
    }
    check(query);
}

unsafe fn check(query: *mut pg_sys::Query) {
    for cte in PgList::<pg_sys::CommonTableExpr>::from_pg((*query).cteList).iter_ptr() {
        let inner = (*cte).ctequery;
        if !inner.is_null() && (*inner).type_ == pg_sys::NodeTag::T_Query {
            check(inner.cast());
        }
    }
    let on_conflict = (*query).onConflict;
    if on_conflict.is_null() || (*query).resultRelation <= 0 {
        return;
    }
    let rtable = PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
    let Some(target) = rtable.get_ptr((*query).resultRelation as usize - 1) else { return };
    if (*target).relkind != pg_sys::RELKIND_FOREIGN_TABLE as i8 || !is_sequin_table((*target).relid) {
        return;
    }
    if (*on_conflict).action == pg_sys::OnConflictAction::ONCONFLICT_UPDATE {
        SequinError::new(
            ErrorKind::Unsupported,
            "INSERT … ON CONFLICT DO UPDATE is not supported on sequin_fdw tables",
        )
        .with_detail("The API creates and updates records with different requests.")
        .with_hint("Use INSERT … ON CONFLICT DO NOTHING, then UPDATE the rows that already exist.")
        .raise();
    }
    // The API decides what a duplicate is; there is no local index to infer.
    (*on_conflict).arbiterElems = std::ptr::null_mut();
    (*on_conflict).arbiterWhere = std::ptr::null_mut();
    (*on_conflict).constraint = pg_sys::InvalidOid;
}

unsafe fn is_sequin_table(relid: pg_sys::Oid) -> bool {
    let ours = pg_sys::get_foreign_data_wrapper_oid(c"sequin_fdw".as_ptr(), true);
    let server = pg_sys::GetForeignServer(pg_sys::GetForeignServerIdByRelId(relid));
    ours != pg_sys::InvalidOid && (*server).fdwid == ours
}
