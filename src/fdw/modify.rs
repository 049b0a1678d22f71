//! Writes: INSERT, UPDATE and DELETE on a foreign table go to the API first
//! (see `write.rs`); the API's reply is applied to the shadow table and
//! fills RETURNING.

use super::tuple::{attribute_name, attributes, fill_slot_from_json, slot_row};
use crate::catalog;
use crate::error::{ErrorKind, OrRaise, SequinError};
use crate::providers::{Record, WriteRow};
use crate::shadow::is_standard_field;
use crate::write::Writer;
use pgrx::memcxt::PgMemoryContexts;
use pgrx::pg_sys;
use std::ffi::CStr;

/// The junk column that carries the row's id from the scan to the write.
const ROW_ID: &CStr = c"sequin_id";

struct ModifyState {
    writer: Writer,
    foreign_table: pg_sys::Oid,
    /// Attribute number of ROW_ID in the subplan's output (UPDATE, DELETE).
    row_id_attno: i16,
    /// Attribute numbers an UPDATE sets.
    updated: Vec<i16>,
}

unsafe fn state<'a>(rinfo: *mut pg_sys::ResultRelInfo) -> &'a ModifyState {
    &*((*rinfo).ri_FdwState as *const ModifyState)
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn add_foreign_update_targets(
    root: *mut pg_sys::PlannerInfo,
    rtindex: pg_sys::Index,
    _target_rte: *mut pg_sys::RangeTblEntry,
    target_relation: pg_sys::Relation,
) {
    let id = attributes((*target_relation).rd_att)
        .iter()
        .find(|a| !a.attisdropped && attribute_name(a) == "id")
        .map(|a| (a.attnum, a.atttypid, a.atttypmod, a.attcollation));
    let Some((attno, type_oid, typmod, collation)) = id else {
        SequinError::new(ErrorKind::Unsupported, "a sequin_fdw foreign table without an \"id\" column cannot be updated")
            .raise()
    };
    let var = pg_sys::makeVar(rtindex as i32, attno, type_oid, typmod, collation, 0);
    pg_sys::add_row_identity_var(root, var, rtindex, ROW_ID.as_ptr());
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_modify(
    mtstate: *mut pg_sys::ModifyTableState,
    rinfo: *mut pg_sys::ResultRelInfo,
    _fdw_private: *mut pg_sys::List,
    _subplan_index: i32,
    eflags: i32,
) {
    if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
        return;
    }
    let foreign_table = (*(*rinfo).ri_RelationDesc).rd_id;
    let collection = catalog::load_collection(foreign_table).or_raise();
    let writer = Writer::for_current_user(collection).or_raise();
    let operation = (*mtstate).operation;
    let mut row_id_attno = 0;
    let mut updated = Vec::new();
    if operation == pg_sys::CmdType::CMD_UPDATE || operation == pg_sys::CmdType::CMD_DELETE {
        let subplan = (*(*mtstate).ps.lefttree).plan;
        row_id_attno = pg_sys::ExecFindJunkAttributeInTlist((*subplan).targetlist, ROW_ID.as_ptr());
        if row_id_attno <= 0 {
            SequinError::internal("the row id column is missing from the plan").raise();
        }
    }
    if operation == pg_sys::CmdType::CMD_UPDATE {
        let columns = pg_sys::ExecGetUpdatedCols(rinfo, (*mtstate).ps.state);
        let mut member = -1;
        loop {
            member = pg_sys::bms_next_member(columns, member);
            if member < 0 {
                break;
            }
            updated.push((member + pg_sys::FirstLowInvalidHeapAttributeNumber) as i16);
        }
    }
    let state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(ModifyState {
        writer,
        foreign_table,
        row_id_attno,
        updated,
    });
    (*rinfo).ri_FdwState = state.cast();
}

fn read_only_error(column: &str) -> SequinError {
    SequinError::new(ErrorKind::ReadOnlyColumn, format!("column \"{column}\" is read-only"))
        .with_detail("The API assigns ids, timestamps and the standard sync fields.")
}

/// The columns a statement sets: every non-null column of an INSERT, the
/// SET list of an UPDATE. Read-only columns are refused before any request.
unsafe fn statement_row(slot: *mut pg_sys::TupleTableSlot, updated: Option<&[i16]>) -> WriteRow {
    let refused = std::cell::RefCell::new(None);
    let row = slot_row(slot, &|attnum, name, is_null| {
        let sets = match updated {
            Some(columns) => columns.contains(&attnum),
            None => !is_null,
        };
        if sets && is_standard_field(name) && refused.borrow().is_none() {
            *refused.borrow_mut() = Some(name.to_string());
        }
        sets
    })
    .or_raise();
    if let Some(column) = refused.into_inner() {
        read_only_error(&column).raise();
    }
    row
}

unsafe fn row_id(state: &ModifyState, plan_slot: *mut pg_sys::TupleTableSlot) -> String {
    let mut is_null = false;
    let datum = pg_sys::ExecGetJunkAttribute(plan_slot, state.row_id_attno, &mut is_null);
    if is_null {
        SequinError::internal("a row to change has no id").raise();
    }
    pgrx::FromDatum::from_datum(datum, false).unwrap_or_default()
}

/// Applies the record locally and fills the RETURNING slot with the row as
/// the shadow table now holds it.
unsafe fn finish(state: &ModifyState, slot: *mut pg_sys::TupleTableSlot, record: &Record) -> *mut pg_sys::TupleTableSlot {
    state.writer.apply_locally(record).or_raise();
    let row = catalog::shadow_row_json(&state.writer.collection, &record.id)
        .or_raise()
        .unwrap_or_else(|| state.writer.collection.shadow.row_json(record));
    fill_slot_from_json(slot, state.foreign_table, &row).or_raise();
    slot
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_insert(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    _plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    let state = state(rinfo);
    let row = statement_row(slot, None);
    let record = state.writer.insert(&row).or_raise();
    finish(state, slot, &record)
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_update(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    let state = state(rinfo);
    let id = row_id(state, plan_slot);
    let row = statement_row(slot, Some(&state.updated));
    let old_raw = catalog::shadow_raw(&state.writer.collection, &id).or_raise();
    let record = state.writer.update(&id, &row, old_raw.as_ref()).or_raise();
    finish(state, slot, &record)
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_delete(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    let state = state(rinfo);
    let id = row_id(state, plan_slot);
    let record = state.writer.delete(&id).or_raise();
    finish(state, slot, &record)
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn end_foreign_modify(_estate: *mut pg_sys::EState, rinfo: *mut pg_sys::ResultRelInfo) {
    (*rinfo).ri_FdwState = std::ptr::null_mut();
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn is_foreign_rel_updatable(_relation: pg_sys::Relation) -> i32 {
    (1 << pg_sys::CmdType::CMD_INSERT as i32)
        | (1 << pg_sys::CmdType::CMD_UPDATE as i32)
        | (1 << pg_sys::CmdType::CMD_DELETE as i32)
}
