//! Writes: INSERT, UPDATE and DELETE on a foreign table go to the API first
//! (see `write.rs`); the API's reply is applied to the shadow table and
//! fills RETURNING.

use super::tuple::{attribute_name, attributes, fill_slot_from_json, positional_row, slot_row};
use crate::catalog;
use super::options::load_foreign_table;
use crate::error::{ErrorKind, OrRaise, SequinError};
use crate::providers::{BatchRow, Record, WriteOp, WriteRow, WriteValue};
use crate::reconcile;
use crate::rollback;
use crate::time::now_us;
use crate::shadow::is_standard_field;
use crate::write::Writer;
use pgrx::memcxt::PgMemoryContexts;
use pgrx::pg_sys;
use std::collections::VecDeque;
use std::ffi::CStr;

/// The junk column that carries the row's id from the scan to the write.
const ROW_ID: &CStr = c"sequin_id";

struct ModifyState {
    writer: Writer,
    foreign_table: pg_sys::Oid,
    op: WriteOp,
    /// Attribute number of ROW_ID in the subplan's output (UPDATE, DELETE).
    row_id_attno: i16,
    /// Attribute numbers an UPDATE sets.
    updated: Vec<i16>,
    /// The most rows this statement may write.
    limit: usize,
    /// INSERT … ON CONFLICT DO NOTHING: a duplicate the API refuses is skipped.
    skip_duplicates: bool,
    /// The plan that feeds rows to this statement.
    subplan: *mut pg_sys::PlanState,
    /// Rows handed to us so far.
    rows_seen: usize,
    /// Ids this statement has changed upstream, for the DETAIL of a failure.
    applied: Vec<String>,
    /// The API takes a statement's rows in one request (see `batch_next`).
    batched: bool,
    /// The records of a batch already sent, for the rows still to come.
    batch_records: VecDeque<Record>,
    /// UPDATE: the table attribute each subplan output column sets.
    update_columns: Vec<(usize, i16)>,
    /// The foreign table's columns.
    tupdesc: pg_sys::TupleDesc,
    /// INSERT: rows need a projection to become the table's row (junk columns).
    projected_insert: bool,
    /// The statement reads the written rows back (RETURNING, row triggers).
    slot_is_read: bool,
}

unsafe fn state<'a>(rinfo: *mut pg_sys::ResultRelInfo) -> &'a mut ModifyState {
    let state = (*rinfo).ri_FdwState as *mut ModifyState;
    if state.is_null() {
        SequinError::internal("a write reached a sequin_fdw table that was not prepared for it").raise();
    }
    &mut *state
}

/// COPY FROM and tuple routing into a partition insert without a plan whose
/// rows can be counted first, so the per-statement limit could not hold
/// before the first request: refused.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_insert(
    _mtstate: *mut pg_sys::ModifyTableState,
    _rinfo: *mut pg_sys::ResultRelInfo,
) {
    SequinError::new(
        ErrorKind::Unsupported,
        "COPY into a sequin_fdw table, or routing rows into one as a partition, is not supported",
    )
    .with_hint("Load the rows into a local table, then INSERT … SELECT from it in batches within the per-statement limit.")
    .raise()
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

fn write_op(operation: pg_sys::CmdType::Type) -> Option<WriteOp> {
    match operation {
        pg_sys::CmdType::CMD_INSERT => Some(WriteOp::Insert),
        pg_sys::CmdType::CMD_UPDATE => Some(WriteOp::Update),
        pg_sys::CmdType::CMD_DELETE => Some(WriteOp::Delete),
        _ => None,
    }
}

/// The refusal of a statement the collection does not take, if it does not.
fn unsupported(label: &str, name: &str, writes: &[WriteOp], hint: Option<&str>, op: WriteOp) -> Option<SequinError> {
    if writes.contains(&op) {
        return None;
    }
    let message = match writes {
        [] => format!("[{label}]: {name} are read-only"),
        _ => format!("[{label}]: {name} do not support {}", op.as_sql()),
    };
    let supported = writes.iter().map(|w| w.as_sql()).collect::<Vec<_>>().join(", ");
    let hint = hint.map_or_else(|| format!("Supported on {name}: {supported}."), str::to_string);
    Some(SequinError::new(ErrorKind::Unsupported, message).with_detail("No request was sent.").with_hint(hint))
}

/// Refuses, while the statement is planned (before Postgres' own check of
/// `is_foreign_rel_updatable`, and so before any request), a statement the
/// collection's API does not take: any write to a read-only collection, or
/// one the API has no endpoint for (Stripe never deletes a price).
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn plan_foreign_modify(
    root: *mut pg_sys::PlannerInfo,
    plan: *mut pg_sys::ModifyTable,
    result_relation: pg_sys::Index,
    _subplan_index: i32,
) -> *mut pg_sys::List {
    let rte = *(*root).simple_rte_array.add(result_relation as usize);
    let Some(op) = write_op((*plan).operation) else {
        return std::ptr::null_mut();
    };
    // An unknown collection is reported when the statement starts; so is
    // a statement a described collection does not take (its schema is in
    // the catalog, read then).
    let Ok(config) = load_foreign_table((*rte).relid) else {
        return std::ptr::null_mut();
    };
    let provider = config.server.provider;
    if let Some(schema) = provider.compiled_collection(&config.table.collection) {
        if let Some(error) = unsupported(provider.label(), &schema.name, &schema.writes, schema.writes_hint.as_deref(), op) {
            error.raise();
        }
    }
    std::ptr::null_mut()
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_modify(
    mtstate: *mut pg_sys::ModifyTableState,
    rinfo: *mut pg_sys::ResultRelInfo,
    _fdw_private: *mut pg_sys::List,
    subplan_index: i32,
    eflags: i32,
) {
    if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
        return;
    }
    crate::api::refuse_in_recovery("a write to a sequin_fdw table").or_raise();
    let foreign_table = (*(*rinfo).ri_RelationDesc).rd_id;
    let collection = catalog::load_collection(foreign_table).or_raise();
    let Some(op) = write_op((*mtstate).operation) else {
        SequinError::new(ErrorKind::Unsupported, "sequin_fdw tables support INSERT, UPDATE and DELETE").raise()
    };
    let provider_limit = collection.config.server.provider.statement_limit(op);
    let limit = collection.config.table.max_rows_per_statement.map_or(provider_limit, |n| n.min(provider_limit));
    let writer = Writer::for_current_user(foreign_table, collection).or_raise();
    // A described collection's statements (checked here, once its schema
    // is known; a compiled one's were checked when planned).
    let spec = &writer.collection.spec;
    let label = writer.collection.config.server.provider.label();
    if let Some(error) = unsupported(label, &spec.name, &spec.writes, spec.writes_hint.as_deref(), op) {
        error.raise();
    }
    let subplan = (*mtstate).ps.lefttree;
    let mut row_id_attno = 0;
    let mut updated = Vec::new();
    if op != WriteOp::Insert {
        row_id_attno = pg_sys::ExecFindJunkAttributeInTlist((*(*subplan).plan).targetlist, ROW_ID.as_ptr());
        if row_id_attno <= 0 {
            SequinError::internal("the row id column is missing from the plan").raise();
        }
    }
    if op == WriteOp::Update {
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
    let plan = (*mtstate).ps.plan as *mut pg_sys::ModifyTable;
    let skip_duplicates = (*plan).onConflictAction == pg_sys::OnConflictAction::ONCONFLICT_NOTHING;
    let batched = writer.collection.config.server.provider.batch_limit(op) > 1;
    let mut update_columns = Vec::new();
    if op == WriteOp::Update && !(*plan).updateColnosLists.is_null() {
        let colnos = pg_sys::list_nth((*plan).updateColnosLists, subplan_index) as *mut pg_sys::List;
        for position in 0..(if colnos.is_null() { 0 } else { (*colnos).length as usize }) {
            update_columns.push((position, (*(*colnos).elements.add(position)).int_value as i16));
        }
    }
    let state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(ModifyState {
        writer,
        foreign_table,
        op,
        row_id_attno,
        updated,
        limit,
        skip_duplicates,
        subplan,
        rows_seen: 0,
        applied: Vec::new(),
        batched,
        batch_records: VecDeque::new(),
        update_columns,
        tupdesc: (*(*rinfo).ri_RelationDesc).rd_att,
        projected_insert: false,
        slot_is_read: !(*plan).returningLists.is_null() || !(*rinfo).ri_TrigDesc.is_null(),
    });
    (*rinfo).ri_FdwState = state.cast();
}

unsafe fn exec_proc_node(node: *mut pg_sys::PlanState) -> *mut pg_sys::TupleTableSlot {
    let next = (*node).ExecProcNode.expect("an initialized plan node has ExecProcNode");
    next(node)
}

unsafe fn is_empty(slot: *mut pg_sys::TupleTableSlot) -> bool {
    slot.is_null() || (*slot).tts_flags & pg_sys::TTS_FLAG_EMPTY as u16 != 0
}

fn too_many_rows(state: &ModifyState) -> SequinError {
    let provider = state.writer.collection.config.server.provider.label();
    SequinError::new(
        ErrorKind::TooManyRows,
        format!(
            "[{provider}]: this {} writes more than {} rows, the most one statement may write",
            state.op.as_sql(),
            state.limit
        ),
    )
    .with_detail(if state.applied.is_empty() { "No request was sent.".to_string() } else { applied_detail(state) })
    .with_hint("Split the statement, e.g. WHERE id IN (SELECT id … LIMIT n); the table option max_rows_per_statement can lower the limit.")
}

fn applied_detail(state: &ModifyState) -> String {
    format!(
        "Already applied upstream by this statement (kept in the API, re-read into the table): {}.",
        state.applied.join(", ")
    )
}

/// Counts the statement's rows before its first request (see `read_ahead`).
unsafe fn check_statement_size(state: &mut ModifyState, slot: *mut pg_sys::TupleTableSlot, id: Option<&str>) {
    state.rows_seen += 1;
    if state.rows_seen > 1 {
        if state.rows_seen > state.limit {
            too_many_rows(state).raise();
        }
        return;
    }
    read_ahead(state, slot, id, |_| {});
}

/// At a statement's first row: reads the rows after it from the subplan
/// (they come from shadow tables or SQL, so this is cheap; a single VALUES
/// row or a lookup of one id has none), showing each to
/// `each` and refusing a statement over the limit before any request, then
/// rescans the subplan and advances it past the first row. `slot` (the
/// first row) is materialized first, since the subplan's memory is reused;
/// `id` is the first row's id for UPDATE/DELETE, checked against the rescan
/// so that a plan whose order is not stable fails before anything was sent.
unsafe fn read_ahead(
    state: &ModifyState,
    slot: *mut pg_sys::TupleTableSlot,
    id: Option<&str>,
    mut each: impl FnMut(*mut pg_sys::TupleTableSlot),
) {
    let subplan = state.subplan;
    let values = (*(*subplan).plan).type_ == pg_sys::NodeTag::T_Result && (*subplan).lefttree.is_null();
    if values || super::scan::is_single_lookup((*subplan).plan) {
        return;
    }
    if !is_empty(slot) {
        let materialize = (*(*slot).tts_ops).materialize.expect("every slot type can materialize");
        materialize(slot);
    }
    let mut rows = 1;
    loop {
        let next = exec_proc_node(subplan);
        if is_empty(next) {
            break;
        }
        rows += 1;
        if rows > state.limit {
            too_many_rows(state).raise();
        }
        each(next);
    }
    pg_sys::ExecReScan(subplan);
    let again = exec_proc_node(subplan);
    if let Some(id) = id {
        let same = !is_empty(again) && junk_id(again, state.row_id_attno).as_deref() == Some(id);
        if !same {
            SequinError::internal("the rows of this statement changed order when counted; no request was sent").raise();
        }
    }
}

unsafe fn junk_id(plan_slot: *mut pg_sys::TupleTableSlot, attno: i16) -> Option<String> {
    let mut is_null = false;
    let datum = pg_sys::ExecGetJunkAttribute(plan_slot, attno, &mut is_null);
    if is_null {
        return None;
    }
    pgrx::FromDatum::from_datum(datum, false)
}

fn read_only_error(column: &str) -> SequinError {
    SequinError::new(ErrorKind::ReadOnlyColumn, format!("column \"{column}\" is read-only"))
        .with_detail("The API assigns ids, timestamps and the standard sync fields. An UPDATE may name one with the value it has (ORMs send every column), not with another.")
}

/// Refuses a row that sets a column the API owns.
fn refuse_owned_columns(row: &WriteRow) {
    if let Some((name, _)) = row.iter().find(|(name, _)| is_standard_field(name)) {
        read_only_error(name).raise();
    }
}

/// The columns a statement sets: every non-null column of an INSERT, the
/// SET list of an UPDATE. An INSERT that sets a read-only column is refused
/// before any request; an UPDATE's row goes through `update_row`.
unsafe fn statement_row(slot: *mut pg_sys::TupleTableSlot, updated: Option<&[i16]>) -> WriteRow {
    let row = slot_row(slot, &|attnum, _, is_null| match updated {
        Some(columns) => columns.contains(&attnum),
        None => !is_null,
    })
    .or_raise();
    if updated.is_none() {
        refuse_owned_columns(&row);
    }
    row
}

/// What an UPDATE sends. ORMs name every column in their UPDATEs (Django's
/// `save()`): a column the API owns (an id, a timestamp, a standard field,
/// one the API fixes at creation) that keeps its current value is simply
/// not sent; one that would change is refused with 428C9, here for the
/// standard fields and by the provider for its own columns.
unsafe fn update_row(state: &ModifyState, id: &str, row: WriteRow) -> WriteRow {
    let spec = &state.writer.collection.spec;
    let owned = |name: &str| is_standard_field(name) || !spec.column(name).is_some_and(|c| c.writable_by(WriteOp::Update));
    let named: Vec<&(String, WriteValue)> = row.iter().filter(|(name, _)| owned(name)).collect();
    if named.is_empty() {
        return row;
    }
    let changed = catalog::changed_columns(&state.writer.collection, id, &named).or_raise();
    let row: WriteRow = row.into_iter().filter(|(name, _)| !owned(name) || changed.contains(name)).collect();
    refuse_owned_columns(&row);
    row
}

unsafe fn row_id(state: &ModifyState, plan_slot: *mut pg_sys::TupleTableSlot) -> String {
    junk_id(plan_slot, state.row_id_attno).unwrap_or_else(|| SequinError::internal("a row to change has no id").raise())
}

/// A failed request of row k: the DETAIL also names the rows this statement
/// already changed upstream, and records whose state is now uncertain are
/// queued for a re-read.
fn request_failed(state: &ModifyState, id: Option<&str>, mut error: SequinError) -> SequinError {
    let uncertain =
        matches!(error.kind, ErrorKind::NotFound | ErrorKind::Timeout | ErrorKind::Upstream | ErrorKind::OutcomeUnknown);
    match (uncertain, id) {
        (true, Some(id)) => reconcile::request(&[(state.foreign_table, id.to_string())]),
        // A created record's id is unknown: the next poll finds it.
        (true, None) if error.kind == ErrorKind::OutcomeUnknown => reconcile::poll_all_soon(),
        _ => {}
    }
    if error.kind == ErrorKind::NotFound && state.op == WriteOp::Update {
        error = error.with_hint("The record was deleted upstream; the table marks it deleted within one poll interval.");
    }
    if !state.applied.is_empty() {
        let detail = match &error.detail {
            Some(detail) => format!("{detail}\n{}", applied_detail(state)),
            None => applied_detail(state),
        };
        error = error.with_detail(detail);
    }
    error
}

/// Remembers a change the API applied, applies it locally and fills the
/// RETURNING slot with the row as the shadow table now holds it.
unsafe fn finish(state: &mut ModifyState, slot: *mut pg_sys::TupleTableSlot, record: &Record) -> *mut pg_sys::TupleTableSlot {
    let provider = state.writer.collection.config.server.provider.label();
    rollback::remember(state.foreign_table, provider, &record.id);
    state.applied.push(record.id.clone());
    state.writer.apply_locally(std::slice::from_ref(record)).or_raise();
    fill_from_shadow(state, slot, record)
}

/// Fills the slot with the row as the shadow table now holds it, when
/// anything reads the slot: RETURNING, or a row trigger on the foreign table.
unsafe fn fill_from_shadow(state: &ModifyState, slot: *mut pg_sys::TupleTableSlot, record: &Record) -> *mut pg_sys::TupleTableSlot {
    if !state.slot_is_read {
        return slot;
    }
    let row = catalog::shadow_row_json(&state.writer.collection, &record.id)
        .or_raise()
        .unwrap_or_else(|| state.writer.collection.shadow.row_json(record));
    fill_slot_from_json(slot, state.foreign_table, &row).or_raise();
    slot
}

/// Batch writes, for APIs that take a statement's rows in one all-or-nothing
/// request: at the statement's first row every row is read (the first from
/// the executor, the others straight from the subplan, which is then
/// rescanned), counted against the limit and sent in one request; then each
/// row the executor hands over takes its record, in order. Works with
/// RETURNING, which PostgreSQL's own batch insert does not.
unsafe fn batch_next(state: &mut ModifyState, slot: *mut pg_sys::TupleTableSlot, id: Option<String>) -> *mut pg_sys::TupleTableSlot {
    if state.rows_seen == 0 {
        send_batch(state, slot, id.as_deref());
    }
    state.rows_seen += 1;
    let Some(record) = state.batch_records.pop_front() else {
        SequinError::internal("the statement has more rows than its batch").raise()
    };
    if id.as_deref().is_some_and(|id| id != record.id) {
        SequinError::internal("the rows of this statement changed order after its batch was sent").raise();
    }
    fill_from_shadow(state, slot, &record)
}

unsafe fn send_batch(state: &mut ModifyState, slot: *mut pg_sys::TupleTableSlot, id: Option<&str>) {
    let first = match (state.op, id) {
        (WriteOp::Insert, _) => statement_row(slot, None),
        (WriteOp::Update, Some(id)) => update_row(state, id, statement_row(slot, Some(&state.updated))),
        _ => Vec::new(),
    };
    let mut rows = vec![batch_row(state, id, first)];
    read_ahead(state, slot, id, |next| {
        let next_id = (state.op != WriteOp::Insert).then(|| row_id(state, next));
        let row = match (state.op, &next_id) {
            (WriteOp::Update, Some(id)) => update_row(state, id, plan_row(state, next)),
            _ => plan_row(state, next),
        };
        rows.push(batch_row(state, next_id.as_deref(), row));
    });
    let records = match state.writer.batch(state.op, &rows) {
        Ok(records) if records.len() == rows.len() => records,
        Ok(_) => SequinError::internal("the API answered a batch with another number of records").raise(),
        Err(error) => {
            // An unknown outcome: the API may have applied the batch.
            if matches!(error.kind, ErrorKind::Timeout | ErrorKind::Upstream) {
                let ids: Vec<_> = rows.iter().filter_map(|r| r.id.clone()).map(|id| (state.foreign_table, id)).collect();
                reconcile::request(&ids);
            }
            error.raise()
        }
    };
    let provider = state.writer.collection.config.server.provider.label();
    for record in &records {
        rollback::remember(state.foreign_table, provider, &record.id);
        state.applied.push(record.id.clone());
    }
    let records = read_back(state, records);
    state.writer.apply_locally(&records).or_raise();
    state.batch_records = records.into();
}

/// A batch reply may carry ids only: when the statement reads its rows back
/// (RETURNING), the API's own records are fetched in one more request, so
/// fields the API computes are there too. If that request fails, the rows
/// show what was sent and the sync brings the rest.
unsafe fn read_back(state: &ModifyState, records: Vec<Record>) -> Vec<Record> {
    if !state.slot_is_read || state.op == WriteOp::Delete {
        return records;
    }
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let Ok(Some(fetched)) = state.writer.fetch_many(&ids) else {
        return records;
    };
    let mut fetched: std::collections::HashMap<String, Record> = fetched.into_iter().map(|r| (r.id.clone(), r)).collect();
    records.into_iter().map(|sent| fetched.remove(&sent.id).unwrap_or(sent)).collect()
}

/// The columns a subplan row sets, by position (its columns are not named
/// like the table's).
unsafe fn plan_row(state: &ModifyState, plan_slot: *mut pg_sys::TupleTableSlot) -> WriteRow {
    let row = match state.op {
        WriteOp::Insert => {
            if state.projected_insert {
                SequinError::new(ErrorKind::Unsupported, "this INSERT's rows cannot be gathered into one batch request")
                    .with_hint("INSERT … SELECT the table's columns in order, without extra columns.")
                    .raise()
            }
            let columns: Vec<(usize, i16)> =
                attributes(state.tupdesc).iter().enumerate().map(|(i, a)| (i, a.attnum)).collect();
            positional_row(plan_slot, state.tupdesc, &columns, true)
        }
        WriteOp::Update => positional_row(plan_slot, state.tupdesc, &state.update_columns, false),
        WriteOp::Delete => Ok(Vec::new()),
    }
    .or_raise();
    if state.op == WriteOp::Insert {
        refuse_owned_columns(&row);
    }
    row
}

fn batch_row(state: &ModifyState, id: Option<&str>, row: WriteRow) -> BatchRow {
    let old = match (state.op, id) {
        (WriteOp::Update, Some(id)) => catalog::shadow_raw_and_version(&state.writer.collection, id).or_raise(),
        _ => None,
    };
    BatchRow { id: id.map(str::to_string), row, old }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_insert(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    _plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    let state = state(rinfo);
    if state.batched {
        state.projected_insert = !(*rinfo).ri_projectNew.is_null();
        return batch_next(state, slot, None);
    }
    let row = statement_row(slot, None);
    check_statement_size(state, slot, None);
    match state.writer.insert(&row) {
        Ok(record) => finish(state, slot, &record),
        Err(error) if error.kind == ErrorKind::Conflict && state.skip_duplicates => std::ptr::null_mut(),
        Err(error) => request_failed(state, None, error).raise(),
    }
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
    if state.batched {
        return batch_next(state, slot, Some(id));
    }
    let row = update_row(state, &id, statement_row(slot, Some(&state.updated)));
    check_statement_size(state, slot, Some(&id));
    if row.is_empty() {
        // Nothing the API would change: no request.
        let unchanged = Record { id: id.clone(), version_us: 0, deleted: false, columns: Default::default(), raw: serde_json::Value::Null };
        return fill_from_shadow(state, slot, &unchanged);
    }
    let provider = state.writer.collection.config.server.provider;
    let old_raw = match provider.update_needs_current(&row) {
        true => catalog::shadow_raw(&state.writer.collection, &id).or_raise(),
        false => None,
    };
    match state.writer.update(&id, &row, old_raw.as_ref()) {
        Ok(record) => finish(state, slot, &record),
        Err(error) => request_failed(state, Some(&id), error).raise(),
    }
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
    if state.batched {
        return batch_next(state, slot, Some(id));
    }
    check_statement_size(state, slot, Some(&id));
    match state.writer.delete(&id) {
        Ok(record) => finish(state, slot, &record),
        // Already gone upstream: the DELETE has nothing left to do there.
        Err(error) if error.kind == ErrorKind::NotFound => {
            let gone = Record::gone(&id, now_us());
            state.writer.apply_locally(std::slice::from_ref(&gone)).or_raise();
            fill_from_shadow(state, slot, &gone)
        }
        Err(error) => request_failed(state, Some(&id), error).raise(),
    }
}

/// EXPLAIN ANALYZE of a write shows what it asked the API and how long
/// that took, as postgres_fdw shows its remote SQL.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn explain_foreign_modify(
    _mtstate: *mut pg_sys::ModifyTableState,
    rinfo: *mut pg_sys::ResultRelInfo,
    _fdw_private: *mut pg_sys::List,
    _subplan_index: i32,
    es: *mut pg_sys::ExplainState,
) {
    let state = (*rinfo).ri_FdwState as *mut ModifyState;
    if state.is_null() || !(*es).analyze {
        return;
    }
    let log = (*state).writer.requests.borrow();
    let routes = log.routes.iter().map(|(route, n)| if *n == 1 { route.clone() } else { format!("{route} ×{n}") }).collect::<Vec<_>>();
    let summary = match routes.is_empty() {
        true => "none".to_string(),
        false => format!("{} ({})", log.calls(), routes.join(", ")),
    };
    pg_sys::ExplainPropertyText(c"API Requests".as_ptr(), pgrx::pg_sys::AsPgCStr::as_pg_cstr(&summary), es);
    if (*es).timing {
        pg_sys::ExplainPropertyFloat(c"API Time".as_ptr(), c"ms".as_ptr(), log.time.as_secs_f64() * 1000.0, 3, es);
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn end_foreign_modify(_estate: *mut pg_sys::EState, rinfo: *mut pg_sys::ResultRelInfo) {
    (*rinfo).ri_FdwState = std::ptr::null_mut();
}

/// The statements the collection takes (information_schema shows them).
/// Only informs: a bad option is reported by the statement, not here.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn is_foreign_rel_updatable(relation: pg_sys::Relation) -> i32 {
    let schema = load_foreign_table((*relation).rd_id)
        .ok()
        .and_then(|config| config.server.provider.compiled_collection(&config.table.collection));
    let writes = schema.map_or_else(|| WriteOp::ALL.to_vec(), |s| s.writes);
    writes
        .iter()
        .map(|op| match op {
            WriteOp::Insert => pg_sys::CmdType::CMD_INSERT,
            WriteOp::Update => pg_sys::CmdType::CMD_UPDATE,
            WriteOp::Delete => pg_sys::CmdType::CMD_DELETE,
        })
        .fold(0, |bits, cmd| bits | (1 << cmd as i32))
}
