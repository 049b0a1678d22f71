//! Planner statistics for synced tables: a foreign table has none of its
//! own (autovacuum never analyzes one), but its shadow table is a plain
//! table that autovacuum keeps analyzed. When the planner asks for a
//! column's statistics, a column of a sequin_fdw table gets those of the
//! shadow column of the same name and type, so the selectivity of `WHERE
//! status = 'active'` or of a join is estimated from real data.

use super::scan;
use pgrx::pg_sys;

static mut PREVIOUS_HOOK: pg_sys::get_relation_stats_hook_type = None;

/// Installs the hook; called once from `_PG_init`.
pub fn install() {
    unsafe {
        PREVIOUS_HOOK = pg_sys::get_relation_stats_hook;
        pg_sys::get_relation_stats_hook = Some(relation_stats);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn relation_stats(
    root: *mut pg_sys::PlannerInfo,
    rte: *mut pg_sys::RangeTblEntry,
    attnum: pg_sys::AttrNumber,
    vardata: *mut pg_sys::VariableStatData,
) -> bool {
    if let Some(previous) = PREVIOUS_HOOK {
        if previous(root, rte, attnum, vardata) {
            return true;
        }
    }
    if attnum <= 0 || rte.is_null() || (*rte).rtekind != pg_sys::RTEKind::RTE_RELATION {
        return false;
    }
    let Some(shadow_oid) = scan::shadow_of_planned(root, rte) else { return false };
    let foreign_table = (*rte).relid;
    let name = pg_sys::get_attname(foreign_table, attnum, true);
    if name.is_null() {
        return false;
    }
    let shadow_attnum = pg_sys::get_attnum(shadow_oid, name);
    if shadow_attnum <= 0 || pg_sys::get_atttype(shadow_oid, shadow_attnum) != pg_sys::get_atttype(foreign_table, attnum) {
        return false;
    }
    let tuple = pg_sys::SearchSysCache3(
        pg_sys::SysCacheIdentifier::STATRELATTINH as i32,
        pg_sys::Datum::from(shadow_oid),
        pg_sys::Datum::from(shadow_attnum),
        pg_sys::Datum::from(false),
    );
    if tuple.is_null() {
        return false;
    }
    (*vardata).statsTuple = tuple;
    (*vardata).freefunc = Some(release_stats);
    // The statistics show values of the table: the planner may use them
    // (in functions that are not leakproof) only for a role that may read
    // the column, as it decides for any table.
    let user = pg_sys::GetUserId();
    (*vardata).acl_ok = (*rte).securityQuals.is_null()
        && (pg_sys::pg_class_aclcheck(foreign_table, user, pg_sys::ACL_SELECT as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
            || pg_sys::pg_attribute_aclcheck(foreign_table, attnum, user, pg_sys::ACL_SELECT as pg_sys::AclMode)
                == pg_sys::AclResult::ACLCHECK_OK);
    true
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn release_stats(tuple: pg_sys::HeapTuple) {
    pg_sys::ReleaseSysCache(tuple);
}
