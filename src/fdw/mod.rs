//! The foreign-data wrapper: the handler that hands Postgres our callbacks.
//! Options, scan, modify and import each live in their own file; none of
//! them speaks HTTP or JSON directly.

pub mod ddl;
pub mod import;
mod index_paths;
mod kept_options;
pub mod modify;
pub mod on_conflict;
pub mod options;
pub mod scan;
pub mod stats;
mod tuple;

use pgrx::pg_sys;

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_sequin_fdw_handler() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// `sequin.sequin_fdw_handler()`: the FdwRoutine, palloc'd as Postgres expects.
#[no_mangle]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn sequin_fdw_handler(_fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let routine = pg_sys::palloc0(std::mem::size_of::<pg_sys::FdwRoutine>()) as *mut pg_sys::FdwRoutine;
    (*routine).type_ = pg_sys::NodeTag::T_FdwRoutine;

    (*routine).GetForeignRelSize = Some(scan::get_foreign_rel_size);
    (*routine).GetForeignPaths = Some(scan::get_foreign_paths);
    (*routine).GetForeignPlan = Some(scan::get_foreign_plan);
    (*routine).BeginForeignScan = Some(scan::begin_foreign_scan);
    (*routine).IterateForeignScan = Some(scan::iterate_foreign_scan);
    (*routine).ReScanForeignScan = Some(scan::rescan_foreign_scan);
    (*routine).EndForeignScan = Some(scan::end_foreign_scan);
    (*routine).ExplainForeignScan = Some(scan::explain_foreign_scan);

    (*routine).AddForeignUpdateTargets = Some(modify::add_foreign_update_targets);
    (*routine).PlanForeignModify = Some(modify::plan_foreign_modify);
    (*routine).BeginForeignModify = Some(modify::begin_foreign_modify);
    (*routine).ExecForeignInsert = Some(modify::exec_foreign_insert);
    (*routine).ExecForeignUpdate = Some(modify::exec_foreign_update);
    (*routine).ExecForeignDelete = Some(modify::exec_foreign_delete);
    (*routine).EndForeignModify = Some(modify::end_foreign_modify);
    (*routine).ExplainForeignModify = Some(modify::explain_foreign_modify);
    (*routine).BeginForeignInsert = Some(modify::begin_foreign_insert);
    (*routine).IsForeignRelUpdatable = Some(modify::is_foreign_rel_updatable);

    (*routine).ImportForeignSchema = Some(import::import_foreign_schema);

    pg_sys::Datum::from(routine)
}
