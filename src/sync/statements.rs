//! Statements that concern the sync workers, seen by a ProcessUtility hook:
//! * DROP DATABASE, CREATE DATABASE … TEMPLATE, ALTER DATABASE … RENAME or
//!   SET TABLESPACE need their database without other sessions: its worker
//!   is stopped first and started again when the statement's transaction
//!   ends (Postgres waits only five seconds for sessions to leave).
//! * CREATE EXTENSION and ALTER EXTENSION … UPDATE ask for a worker in
//!   this database at commit; DROP EXTENSION wakes it so that it leaves.
//! * Dropping a foreign server frees its request budget in shared memory
//!   (object access hook: also when DROP EXTENSION … CASCADE drops it).

use super::databases;
use pgrx::prelude::*;
use std::ffi::CStr;

static mut PREVIOUS_UTILITY_HOOK: pg_sys::ProcessUtility_hook_type = None;
static mut PREVIOUS_ACCESS_HOOK: pg_sys::object_access_hook_type = None;

pub fn install() {
    unsafe {
        PREVIOUS_UTILITY_HOOK = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
        PREVIOUS_ACCESS_HOOK = pg_sys::object_access_hook;
        pg_sys::object_access_hook = Some(object_access);
    }
}

unsafe fn is_node(node: *mut pg_sys::Node, tag: pg_sys::NodeTag) -> bool {
    !node.is_null() && (*node).type_ == tag
}

unsafe fn text(s: *const std::ffi::c_char) -> String {
    if s.is_null() {
        String::new()
    } else {
        CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}

/// The value of option `name` in a list of DefElem, if given as a name.
unsafe fn option(options: *mut pg_sys::List, name: &str) -> Option<String> {
    let list = pgrx::PgList::<pg_sys::DefElem>::from_pg(options);
    let found = list
        .iter_ptr()
        .find(|d| !d.is_null() && text((**d).defname) == name && !(**d).arg.is_null())
        .map(|d| text(pg_sys::defGetString(d)));
    found
}

unsafe fn database_oid(name: &str) -> Option<pg_sys::Oid> {
    let name = std::ffi::CString::new(name).ok()?;
    let oid = pg_sys::get_database_oid(name.as_ptr(), true);
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// What a statement asks of the workers, decided before it runs.
enum Concern {
    /// The statement needs this database without sessions.
    Database(String),
    /// CREATE or ALTER EXTENSION sequin_fdw.
    Extension { created: bool },
    /// DROP EXTENSION (of some extension: the worker checks which).
    DroppedExtension,
    None,
}

unsafe fn concern(statement: *mut pg_sys::Node) -> Concern {
    use pg_sys::NodeTag::*;
    if is_node(statement, T_DropdbStmt) {
        return Concern::Database(text((*(statement as *mut pg_sys::DropdbStmt)).dbname));
    }
    if is_node(statement, T_CreatedbStmt) {
        let options = (*(statement as *mut pg_sys::CreatedbStmt)).options;
        return option(options, "template").map_or(Concern::None, Concern::Database);
    }
    if is_node(statement, T_AlterDatabaseStmt) {
        let stmt = statement as *mut pg_sys::AlterDatabaseStmt;
        if option((*stmt).options, "tablespace").is_some() {
            return Concern::Database(text((*stmt).dbname));
        }
    }
    if is_node(statement, T_RenameStmt) {
        let stmt = statement as *mut pg_sys::RenameStmt;
        if (*stmt).renameType == pg_sys::ObjectType::OBJECT_DATABASE {
            return Concern::Database(text((*stmt).subname));
        }
    }
    if is_node(statement, T_CreateExtensionStmt) && text((*(statement as *mut pg_sys::CreateExtensionStmt)).extname) == "sequin_fdw" {
        return Concern::Extension { created: true };
    }
    if is_node(statement, T_AlterExtensionStmt) && text((*(statement as *mut pg_sys::AlterExtensionStmt)).extname) == "sequin_fdw" {
        return Concern::Extension { created: false };
    }
    if is_node(statement, T_DropStmt) && (*(statement as *mut pg_sys::DropStmt)).removeType == pg_sys::ObjectType::OBJECT_EXTENSION {
        return Concern::DroppedExtension;
    }
    Concern::None
}

#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    let concern = if pstmt.is_null() { Concern::None } else { concern((*pstmt).utilityStmt) };
    match &concern {
        Concern::Database(name) => {
            if let Some(oid) = database_oid(name) {
                databases::hold_off(oid);
            }
        }
        Concern::Extension { .. } | Concern::DroppedExtension => databases::want_worker_at_commit(),
        Concern::None => {}
    }
    match PREVIOUS_UTILITY_HOOK {
        Some(previous) => previous(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc),
        None => pg_sys::standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc),
    }
    if let Concern::Extension { created: true } = concern {
        if let Some(warning) = databases::not_synced_warning() {
            warning!("{warning}");
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn object_access(
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
    sub_id: std::ffi::c_int,
    arg: *mut std::ffi::c_void,
) {
    if let Some(previous) = PREVIOUS_ACCESS_HOOK {
        previous(access, class_id, object_id, sub_id, arg);
    }
    if access == pg_sys::ObjectAccessType::OAT_DROP {
        if class_id == pg_sys::ForeignServerRelationId {
            crate::rate_limit::forget(object_id);
        } else if class_id == pg_sys::UserMappingRelationId {
            crate::oauth::forget(object_id);
        }
    }
}
