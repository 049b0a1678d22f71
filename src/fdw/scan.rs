//! Reads: a foreign-table scan reads its shadow table, never the API — a
//! heap scan, or an index scan of one of the shadow's btree indexes
//! (`index_paths.rs`): its primary key for `id = <a value>`, any index for
//! conditions on its first column and for `ORDER BY` it, and the primary
//! key once per outer row of a nested loop for a join on `id = <another
//! table's column>` (a parameterized path). All quals also stay with the
//! executor (an index only narrows the rows); row estimates and costs come
//! from the shadow's size and statistics.

use super::index_paths::{self, IndexScan};
use super::options::is_sequin_server;
use super::tuple::shadow_layout;
use crate::catalog;
use crate::error::OrRaise;
use pgrx::memcxt::PgMemoryContexts;
use pgrx::pg_sys;
use pgrx::pg_sys::AsPgCStr;
use pgrx::PgList;

struct ScanState {
    /// The executor's per-query memory. Postgres calls Iterate in per-tuple
    /// memory, reset after every row, but the table and index access methods
    /// keep allocations across rows (btree's killed-items list, its copies of
    /// the scan keys): their calls run here, as they would in an index scan.
    scan_memory: pg_sys::MemoryContext,
    shadow: pg_sys::Relation,
    source: Source,
    shadow_slot: *mut pg_sys::TupleTableSlot,
    /// For each foreign-table attribute, its shadow attribute number (0: none).
    attribute_map: Vec<i16>,
    /// The last shadow column any of them reads.
    deform_upto: i16,
    /// The shadow row is returned as it is (see `begin_foreign_scan`).
    pass_through: bool,
}

enum Source {
    Heap(pg_sys::TableScanDesc),
    Index {
        index: pg_sys::Relation,
        scan: pg_sys::IndexScanDesc,
        /// Each key with its value's expression and how to copy the value.
        keys: Vec<(index_paths::Key, *mut pg_sys::ExprState, i16, bool)>,
        direction: pg_sys::ScanDirection::Type,
        /// The keys were evaluated and the scan (re)started.
        started: bool,
        /// A key value is NULL: nothing can match (btree operators are strict).
        no_match: bool,
    },
}

/// The shadow table of a relation being planned, when it is a sequin_fdw
/// table whose size this module has already looked up (`fdw_private`).
pub unsafe fn shadow_of_planned(root: *mut pg_sys::PlannerInfo, rte: *mut pg_sys::RangeTblEntry) -> Option<pg_sys::Oid> {
    if root.is_null() || (*root).simple_rte_array.is_null() || (*root).simple_rel_array.is_null() {
        return None;
    }
    let index = (1..(*root).simple_rel_array_size).find(|&i| *(*root).simple_rte_array.add(i as usize) == rte)?;
    let rel = *(*root).simple_rel_array.add(index as usize);
    if rel.is_null() || (*rel).fdwroutine.is_null() || (*rel).fdw_private.is_null() || (*rel).serverid == pg_sys::InvalidOid {
        return None;
    }
    // A server of this wrapper: the private data is ours.
    is_sequin_server((*rel).serverid).then(|| rel_info(rel).shadow_oid)
}

/// What planning keeps of the shadow table (`baserel->fdw_private`): plain
/// data in the planner's memory.
#[repr(C)]
struct RelInfo {
    shadow_oid: pg_sys::Oid,
}

unsafe fn rel_info<'a>(baserel: *mut pg_sys::RelOptInfo) -> &'a RelInfo {
    &*((*baserel).fdw_private as *const RelInfo)
}

/// The plan's private data, a list of three oid lists (oids, so that the
/// plan can be copied): the shadow table; the index scan (`IndexScan`'s
/// list, or `[0]` for a heap scan); the foreign-table columns the query
/// reads, or `[ALL_COLUMNS]` when a whole-row reference needs them all.
unsafe fn private_part(private: *mut pg_sys::List, n: usize) -> *mut pg_sys::List {
    PgList::<pg_sys::List>::from_pg(private).get_ptr(n).unwrap_or(std::ptr::null_mut())
}

unsafe fn shadow_oid_of(private: *mut pg_sys::List) -> pg_sys::Oid {
    PgList::<pg_sys::Oid>::from_pg(private_part(private, 0)).get_oid(0).unwrap_or(pg_sys::InvalidOid)
}

const ALL_COLUMNS: u32 = 0;

/// The columns a scan must fill: those in the query's target list and its
/// quals (a whole-row reference means all of them).
unsafe fn columns_read(baserel: *mut pg_sys::RelOptInfo, quals: *mut pg_sys::List) -> Option<Vec<i16>> {
    let mut attrs: *mut pg_sys::Bitmapset = std::ptr::null_mut();
    let relid = (*baserel).relid;
    pg_sys::pull_varattnos((*(*baserel).reltarget).exprs.cast(), relid, &mut attrs);
    pg_sys::pull_varattnos(quals.cast(), relid, &mut attrs);
    let offset = pg_sys::FirstLowInvalidHeapAttributeNumber;
    let mut columns = Vec::new();
    let mut member = -1;
    loop {
        member = pg_sys::bms_next_member(attrs, member);
        if member < 0 {
            return Some(columns);
        }
        match member + offset {
            0 => return None,
            attno if attno > 0 => columns.push(attno as i16),
            // System columns of a foreign table hold nothing to copy.
            _ => {}
        }
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_rel_size(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    foreign_table: pg_sys::Oid,
) {
    let stats = catalog::shadow_stats(foreign_table).or_raise();
    let info = pg_sys::palloc0(std::mem::size_of::<RelInfo>()) as *mut RelInfo;
    info.write(RelInfo { shadow_oid: stats.shadow_oid });
    (*baserel).fdw_private = info.cast();
    // The size first: the selectivity of the quals scales the statistics
    // (the shadow's, see stats.rs) by it.
    (*baserel).tuples = stats.rows;
    (*baserel).pages = stats.pages as u32;
    let selectivity = pg_sys::clauselist_selectivity(
        root,
        (*baserel).baserestrictinfo,
        0,
        pg_sys::JoinType::JOIN_INNER,
        std::ptr::null_mut(),
    );
    (*baserel).rows = (stats.rows * selectivity).max(1.0);
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_paths(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    foreign_table: pg_sys::Oid,
) {
    let lateral = (*baserel).lateral_relids;
    // A path's private data: the index scan and its key values (none for
    // a heap scan).
    let path = |rows: f64, startup: f64, total: f64, outer: pg_sys::Relids, pathkeys: *mut pg_sys::List, scan: Option<(IndexScan, Vec<*mut pg_sys::Expr>)>| {
        let private = match scan {
            None => std::ptr::null_mut(),
            Some((scan, values)) => {
                let mut exprs = PgList::<pg_sys::Expr>::new();
                for value in values {
                    exprs.push(value);
                }
                let private = pg_sys::lappend(std::ptr::null_mut(), scan.to_list().cast());
                pg_sys::lappend(private, exprs.into_pg().cast())
            }
        };
        #[cfg(feature = "pg15")]
        let path = pg_sys::create_foreignscan_path(
            root,
            baserel,
            std::ptr::null_mut(),
            rows,
            startup,
            total,
            pathkeys,
            outer,
            std::ptr::null_mut(),
            private,
        );
        // PostgreSQL 17 added fdw_restrictinfo (the quals an outer path
        // checks: none here) and 18 disabled_nodes (how many disabled
        // plan nodes the path holds: none).
        #[cfg(feature = "pg18")]
        let path = pg_sys::create_foreignscan_path(
            root,
            baserel,
            std::ptr::null_mut(),
            rows,
            0,
            startup,
            total,
            pathkeys,
            outer,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            private,
        );
        pg_sys::add_path(baserel, path.cast());
    };
    // A sequential scan of the shadow table, its conditions checked on
    // every row (as Postgres costs one).
    let pages = f64::from((*baserel).pages);
    let quals = (*baserel).baserestrictcost;
    let heap_total = quals.startup
        + pages * pg_sys::seq_page_cost
        + (*baserel).tuples * (pg_sys::cpu_tuple_cost + quals.per_tuple);
    path((*baserel).rows, quals.startup, heap_total, lateral, std::ptr::null_mut(), None);
    let indexes = index_paths::shadow_indexes(rel_info(baserel).shadow_oid, foreign_table);
    // Each index, for the conditions on its first column and for ORDER BY it.
    for index in &indexes {
        let conditions = index_paths::index_conditions(baserel, index);
        let order = index_paths::index_order(root, baserel, index);
        if conditions.is_empty() && order.is_none() {
            continue;
        }
        let mut restrictions = PgList::<pg_sys::RestrictInfo>::new();
        for (rinfo, _, _) in &conditions {
            restrictions.push(*rinfo);
        }
        let fraction = pg_sys::clauselist_selectivity(root, restrictions.into_pg(), 0, pg_sys::JoinType::JOIN_INNER, std::ptr::null_mut());
        let (startup, total) = index_paths::index_scan_cost(root, baserel, index, fraction, conditions.len());
        let scan = IndexScan {
            index: index.oid,
            backward: order.is_some_and(|(backward, _)| backward),
            keys: conditions.iter().map(|(_, key, _)| *key).collect(),
        };
        let values = conditions.iter().map(|(_, _, value)| *value).collect();
        let pathkeys = order.map_or(std::ptr::null_mut(), |(_, pathkeys)| pathkeys);
        path((*baserel).rows, startup, total, lateral, pathkeys, Some((scan, values)));
    }
    // `id = <a column of another relation>`: one probe of the primary key
    // per outer row of a nested loop (a parameterized path).
    let id_attno = pg_sys::get_attnum(foreign_table, c"id".as_ptr());
    let Some(primary) = indexes.iter().find(|i| i.is_primary && i.column == id_attno) else { return };
    for (outer_value, outer) in index_paths::join_lookups(root, baserel, id_attno) {
        let loops = index_paths::outer_rows(root, outer);
        let key = index_paths::Key {
            strategy: pg_sys::BTEqualStrategyNumber as u16,
            subtype: pg_sys::TEXTOID,
            proc: pg_sys::Oid::from(pg_sys::F_TEXTEQ),
            collation: primary.collation,
        };
        let scan = IndexScan { index: primary.oid, backward: false, keys: vec![key] };
        path(1.0, 0.0, index_paths::probe_cost(root, baserel, primary, loops), outer, std::ptr::null_mut(), Some((scan, vec![outer_value])));
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_plan(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _foreign_table: pg_sys::Oid,
    best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    let quals = pg_sys::extract_actual_clauses(scan_clauses, false);
    // An index path carries its scan and key values; the values are
    // evaluated at execution (for a parameterized path the planner turns
    // their outer columns into the nested loop's parameters).
    let path_private = PgList::<pg_sys::List>::from_pg((*best_path).fdw_private);
    let (scan, values) = match (path_private.get_ptr(0), path_private.get_ptr(1)) {
        (Some(scan), Some(values)) => (scan, values),
        _ => (pg_sys::lappend_oid(std::ptr::null_mut(), pg_sys::InvalidOid), std::ptr::null_mut()),
    };
    let shadow_oid = rel_info(baserel).shadow_oid;
    // A cached plan depends on the shadow table too: a change of its
    // indexes or columns plans the query again.
    (*(*root).glob).relationOids = pg_sys::lappend_oid((*(*root).glob).relationOids, shadow_oid);
    let shadow = pg_sys::lappend_oid(std::ptr::null_mut(), shadow_oid);
    let mut columns = std::ptr::null_mut();
    match columns_read(baserel, quals) {
        Some(read) if !read.is_empty() => {
            for attno in read {
                columns = pg_sys::lappend_oid(columns, pg_sys::Oid::from(attno as u32));
            }
        }
        // No column at all (count(*)): an empty list.
        Some(_) => {}
        None => columns = pg_sys::lappend_oid(columns, pg_sys::Oid::from(ALL_COLUMNS)),
    }
    let private = pg_sys::lappend(pg_sys::lappend(pg_sys::lappend(std::ptr::null_mut(), shadow.cast()), scan.cast()), columns.cast());
    pg_sys::make_foreignscan(
        tlist,
        quals,
        (*baserel).relid,
        values,
        private,
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
    // A table whose columns are the shadow's own, in the same places (what
    // IMPORT FOREIGN SCHEMA makes), can hand out the shadow row itself: the
    // executor reads an FDW's rows through any slot type of that layout.
    // (An error here leaves the relation to the transaction's cleanup.)
    let layout = shadow_layout((*(*node).ss.ss_currentRelation).rd_att, (*shadow).rd_att).or_raise();
    let pass_through = layout.identical;
    let mut attribute_map = layout.map;
    let source = match IndexScan::from_list(private_part((*plan).fdw_private, 1)).filter(|s| s.index != pg_sys::InvalidOid) {
        Some(index_scan) => {
            let values = PgList::<pg_sys::Expr>::from_pg((*plan).fdw_exprs);
            if values.len() != index_scan.keys.len() {
                crate::error::SequinError::internal("an index scan's keys and values do not match").raise();
            }
            let mut keys = Vec::with_capacity(values.len());
            for (key, value) in index_scan.keys.iter().zip(values.iter_ptr()) {
                let (mut length, mut by_value) = (0i16, false);
                pg_sys::get_typlenbyval(pg_sys::exprType(value.cast()), &mut length, &mut by_value);
                keys.push((*key, pg_sys::ExecInitExpr(value, node.cast()), length, by_value));
            }
            let index = pg_sys::index_open(index_scan.index, pg_sys::AccessShareLock as i32);
            #[cfg(feature = "pg15")]
            let scan = pg_sys::index_beginscan(shadow, index, (*estate).es_snapshot, keys.len() as i32, 0);
            // PostgreSQL 18 takes the instrumentation EXPLAIN ANALYZE counts
            // index searches in (none: the foreign scan reports its own).
            #[cfg(feature = "pg18")]
            let scan = pg_sys::index_beginscan(shadow, index, (*estate).es_snapshot, std::ptr::null_mut(), keys.len() as i32, 0);
            let direction = if index_scan.backward {
                pg_sys::ScanDirection::BackwardScanDirection
            } else {
                pg_sys::ScanDirection::ForwardScanDirection
            };
            Source::Index { index, scan, keys, direction, started: false, no_match: false }
        }
        None => Source::Heap(pg_sys::table_beginscan(shadow, (*estate).es_snapshot, 0, std::ptr::null_mut())),
    };
    let shadow_slot = pg_sys::table_slot_create(shadow, std::ptr::null_mut());
    // Only the columns the query reads are copied (the others stay NULL),
    // and the shadow row is deformed no further than the last of them.
    let read: Vec<u32> = PgList::<pg_sys::Oid>::from_pg(private_part((*plan).fdw_private, 2)).iter_oid().map(u32::from).collect();
    if !read.contains(&ALL_COLUMNS) {
        for (i, shadow_attno) in attribute_map.iter_mut().enumerate() {
            if !read.contains(&(i as u32 + 1)) {
                *shadow_attno = 0;
            }
        }
    }
    let deform_upto = attribute_map.iter().copied().max().unwrap_or(0);
    // Dropped with the executor's memory context, also when the query fails.
    let state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(ScanState {
        scan_memory: pg_sys::CurrentMemoryContext,
        shadow,
        source,
        shadow_slot,
        attribute_map,
        deform_upto,
        pass_through,
    });
    (*node).fdw_state = state.cast();
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn iterate_foreign_scan(node: *mut pg_sys::ForeignScanState) -> *mut pg_sys::TupleTableSlot {
    let state = &mut *((*node).fdw_state as *mut ScanState);
    let slot = (*node).ss.ss_ScanTupleSlot;
    pg_sys::ExecClearTuple(slot);
    let forward = pg_sys::ScanDirection::ForwardScanDirection;
    let row_memory = pg_sys::MemoryContextSwitchTo(state.scan_memory);
    let found = match &mut state.source {
        Source::Heap(scan) => pg_sys::table_scan_getnextslot(*scan, forward, state.shadow_slot),
        Source::Index { scan, keys, direction, started, no_match, .. } => {
            if !*started {
                *started = true;
                *no_match = false;
                let econtext = (*node).ss.ps.ps_ExprContext;
                let mut scan_keys: Vec<pg_sys::ScanKeyData> = Vec::with_capacity(keys.len());
                for (key, value, length, by_value) in keys.iter() {
                    let mut is_null = false;
                    let evaluate = (*(*value)).evalfunc.expect("an initialized expression");
                    pg_sys::MemoryContextSwitchTo(row_memory);
                    let datum = evaluate(*value, econtext, &mut is_null);
                    pg_sys::MemoryContextSwitchTo(state.scan_memory);
                    if is_null {
                        *no_match = true;
                        break;
                    }
                    // In per-query memory (see scan_memory): the value lives
                    // as long as the scan uses it.
                    let datum = match (*length, *by_value) {
                        (-1, _) => pg_sys::Datum::from(pg_sys::pg_detoast_datum_copy(datum.cast_mut_ptr())),
                        (-2, false) => pg_sys::Datum::from(pg_sys::pstrdup(datum.cast_mut_ptr())),
                        (length, false) => {
                            let length = length.max(0) as usize;
                            let copy = pg_sys::palloc(length) as *mut u8;
                            std::ptr::copy_nonoverlapping(datum.cast_mut_ptr::<u8>(), copy, length);
                            pg_sys::Datum::from(copy)
                        }
                        (_, true) => datum,
                    };
                    let mut scan_key: pg_sys::ScanKeyData = std::mem::zeroed();
                    pg_sys::ScanKeyEntryInitialize(&mut scan_key, 0, 1, key.strategy, key.subtype, key.collation, key.proc, datum);
                    scan_keys.push(scan_key);
                }
                if !*no_match {
                    // The index copies the keys; their values stay ours.
                    pg_sys::index_rescan(*scan, scan_keys.as_mut_ptr(), scan_keys.len() as i32, std::ptr::null_mut(), 0);
                }
            }
            !*no_match && pg_sys::index_getnext_slot(*scan, *direction, state.shadow_slot)
        }
    };
    pg_sys::MemoryContextSwitchTo(row_memory);
    if !found {
        return slot;
    }
    if state.pass_through {
        return state.shadow_slot;
    }
    pg_sys::slot_getsomeattrs(state.shadow_slot, state.deform_upto as i32);
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
    match &mut state.source {
        Source::Heap(scan) => pg_sys::table_rescan(*scan, std::ptr::null_mut()),
        // The key values may depend on a parameter that changed: evaluate them again.
        Source::Index { started, .. } => *started = false,
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn end_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    if (*node).fdw_state.is_null() {
        return;
    }
    let state = &mut *((*node).fdw_state as *mut ScanState);
    pg_sys::ExecDropSingleTupleTableSlot(state.shadow_slot);
    match &state.source {
        Source::Heap(scan) => pg_sys::table_endscan(*scan),
        Source::Index { index, scan, .. } => {
            pg_sys::index_endscan(*scan);
            pg_sys::index_close(*index, pg_sys::NoLock as i32);
        }
    }
    // Keep the lock until the transaction ends, as the executor does.
    pg_sys::table_close(state.shadow, pg_sys::NoLock as i32);
    (*node).fdw_state = std::ptr::null_mut();
}

unsafe fn is_primary_key(index: pg_sys::Oid) -> bool {
    let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::INDEXRELID as i32, pg_sys::Datum::from(index));
    if tuple.is_null() {
        return false;
    }
    let form = pg_sys::GETSTRUCT(tuple) as *mut pg_sys::FormData_pg_index;
    let primary = (*form).indisprimary;
    pg_sys::ReleaseSysCache(tuple);
    primary
}

/// Whether `plan` is this FDW's scan of a shadow table's primary key for
/// one `id`: it yields one row at most.
pub unsafe fn is_single_lookup(plan: *mut pg_sys::Plan) -> bool {
    if plan.is_null() || (*plan).type_ != pg_sys::NodeTag::T_ForeignScan {
        return false;
    }
    let scan = plan as *mut pg_sys::ForeignScan;
    is_sequin_server((*scan).fs_server) && single_lookup(&IndexScan::from_list(private_part((*scan).fdw_private, 1)))
}

/// A scan of the primary key with one equality (`id = <a value>`).
unsafe fn single_lookup(scan: &Option<IndexScan>) -> bool {
    let Some(scan) = scan.as_ref().filter(|s| s.index != pg_sys::InvalidOid) else {
        return false;
    };
    scan.keys.len() == 1 && scan.keys[0].strategy == pg_sys::BTEqualStrategyNumber as u16 && is_primary_key(scan.index)
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
    let scan = IndexScan::from_list(private_part((*plan).fdw_private, 1));
    if single_lookup(&scan) {
        pg_sys::ExplainPropertyText(c"Shadow Lookup".as_ptr(), c"primary key (id)".as_ptr(), es);
        return;
    }
    let Some(scan) = scan.filter(|s| s.index != pg_sys::InvalidOid) else {
        return;
    };
    let index_name = pg_sys::get_rel_name(scan.index);
    if !index_name.is_null() {
        pg_sys::ExplainPropertyText(c"Shadow Index".as_ptr(), index_name, es);
    }
    pg_sys::ExplainPropertyInteger(c"Shadow Index Conditions".as_ptr(), std::ptr::null(), scan.keys.len() as i64, es);
    if scan.backward {
        pg_sys::ExplainPropertyText(c"Shadow Index Direction".as_ptr(), c"backward".as_ptr(), es);
    }
}
