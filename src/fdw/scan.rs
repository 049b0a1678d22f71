//! Reads: a foreign-table scan is a heap scan of its shadow table. No API
//! request is ever made. Quals stay with the executor (they are evaluated
//! on the scanned rows); row estimates come from the shadow's statistics.

use super::tuple::attribute_map;
use crate::catalog;
use crate::error::OrRaise;
use pgrx::memcxt::PgMemoryContexts;
use pgrx::pg_sys;
use pgrx::pg_sys::AsPgCStr;

struct ScanState {
    shadow: pg_sys::Relation,
    scan: pg_sys::TableScanDesc,
    shadow_slot: *mut pg_sys::TupleTableSlot,
    /// For each foreign-table attribute, its shadow attribute number (0: none).
    attribute_map: Vec<i16>,
}

unsafe fn shadow_oid_of(private: *mut pg_sys::List) -> pg_sys::Oid {
    (*(*private).elements).oid_value
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_rel_size(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    foreign_table: pg_sys::Oid,
) {
    let stats = catalog::shadow_stats(foreign_table).or_raise();
    (*baserel).fdw_private = pg_sys::lappend_oid(std::ptr::null_mut(), stats.shadow_oid).cast();
    let selectivity = pg_sys::clauselist_selectivity(
        root,
        (*baserel).baserestrictinfo,
        0,
        pg_sys::JoinType::JOIN_INNER,
        std::ptr::null_mut(),
    );
    (*baserel).rows = (stats.rows * selectivity).max(1.0);
    (*baserel).tuples = stats.rows;
    (*baserel).pages = stats.pages as u32;
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_paths(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _foreign_table: pg_sys::Oid,
) {
    // The cost of a sequential scan of the shadow table.
    let pages = f64::from((*baserel).pages);
    let total = pages * pg_sys::seq_page_cost + (*baserel).tuples * pg_sys::cpu_tuple_cost;
    let path = pg_sys::create_foreignscan_path(
        root,
        baserel,
        std::ptr::null_mut(),
        (*baserel).rows,
        0.0,
        total,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    pg_sys::add_path(baserel, path.cast());
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_plan(
    _root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _foreign_table: pg_sys::Oid,
    _best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    let quals = pg_sys::extract_actual_clauses(scan_clauses, false);
    pg_sys::make_foreignscan(
        tlist,
        quals,
        (*baserel).relid,
        std::ptr::null_mut(),
        (*baserel).fdw_private.cast(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        outer_plan,
    )
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_scan(node: *mut pg_sys::ForeignScanState, eflags: i32) {
    if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
        return;
    }
    let plan = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
    let shadow_oid = shadow_oid_of((*plan).fdw_private);
    let estate = (*node).ss.ps.state;
    let shadow = pg_sys::table_open(shadow_oid, pg_sys::AccessShareLock as i32);
    let scan = pg_sys::table_beginscan(shadow, (*estate).es_snapshot, 0, std::ptr::null_mut());
    let shadow_slot = pg_sys::table_slot_create(shadow, std::ptr::null_mut());
    let attribute_map = attribute_map((*(*node).ss.ss_currentRelation).rd_att, shadow_oid);
    // Dropped with the executor's memory context, also when the query fails.
    let state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(ScanState {
        shadow,
        scan,
        shadow_slot,
        attribute_map,
    });
    (*node).fdw_state = state.cast();
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn iterate_foreign_scan(node: *mut pg_sys::ForeignScanState) -> *mut pg_sys::TupleTableSlot {
    let state = &mut *((*node).fdw_state as *mut ScanState);
    let slot = (*node).ss.ss_ScanTupleSlot;
    pg_sys::ExecClearTuple(slot);
    if !pg_sys::table_scan_getnextslot(state.scan, pg_sys::ScanDirection::ForwardScanDirection, state.shadow_slot) {
        return slot;
    }
    pg_sys::slot_getallattrs(state.shadow_slot);
    let source_values = (*state.shadow_slot).tts_values;
    let source_nulls = (*state.shadow_slot).tts_isnull;
    for (i, &shadow_attno) in state.attribute_map.iter().enumerate() {
        if shadow_attno > 0 {
            let from = (shadow_attno - 1) as usize;
            *(*slot).tts_values.add(i) = *source_values.add(from);
            *(*slot).tts_isnull.add(i) = *source_nulls.add(from);
        } else {
            *(*slot).tts_values.add(i) = pg_sys::Datum::from(0);
            *(*slot).tts_isnull.add(i) = true;
        }
    }
    // The values point into the shadow slot's buffer, pinned until the next row.
    pg_sys::ExecStoreVirtualTuple(slot)
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn rescan_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    let state = &mut *((*node).fdw_state as *mut ScanState);
    pg_sys::table_rescan(state.scan, std::ptr::null_mut());
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn end_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    if (*node).fdw_state.is_null() {
        return;
    }
    let state = &mut *((*node).fdw_state as *mut ScanState);
    pg_sys::ExecDropSingleTupleTableSlot(state.shadow_slot);
    pg_sys::table_endscan(state.scan);
    // Keep the lock until the transaction ends, as the executor does.
    pg_sys::table_close(state.shadow, pg_sys::NoLock as i32);
    (*node).fdw_state = std::ptr::null_mut();
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn explain_foreign_scan(node: *mut pg_sys::ForeignScanState, es: *mut pg_sys::ExplainState) {
    let plan = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
    let shadow_oid = shadow_oid_of((*plan).fdw_private);
    let name = pg_sys::get_rel_name(shadow_oid);
    if !name.is_null() {
        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(shadow_oid));
        let qualified = format!(
            "{}.{}",
            std::ffi::CStr::from_ptr(schema).to_string_lossy(),
            std::ffi::CStr::from_ptr(name).to_string_lossy()
        );
        pg_sys::ExplainPropertyText(c"Shadow Table".as_ptr(), qualified.as_pg_cstr(), es);
    }
}
