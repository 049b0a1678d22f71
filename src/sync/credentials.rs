//! Persisting refresh tokens an OAuth provider rotated (see `oauth.rs`):
//! written into their user mappings by the worker, in its own transaction,
//! through the same code path as ALTER USER MAPPING but without SQL text,
//! so the token is in no statement that could be logged.

use super::poll::in_transaction;
use crate::error::{Result, SequinError};
use crate::oauth;
use pgrx::prelude::*;
use std::ffi::CString;

pub fn persist_rotated_tokens() {
    for (mapping, token) in oauth::take_rotated() {
        if let Err(error) = in_transaction(|| write_refresh_token(mapping, &token)) {
            log!("sequin sync: could not store a rotated refresh token for user mapping {}: {}", u32::from(mapping), error.message);
            oauth::persist_later(mapping, &token);
        }
    }
}

fn write_refresh_token(mapping: pg_sys::Oid, token: &str) -> Result<()> {
    let found = crate::plans::get_two::<String, String>(
        "SELECT CASE WHEN um.umuser = 0 THEN NULL ELSE pg_get_userbyid(um.umuser)::text END, s.srvname::text
           FROM pg_user_mapping um JOIN pg_foreign_server s ON s.oid = um.umserver WHERE um.oid = $1",
        &[mapping.into()],
    )
    .map_err(|e| SequinError::internal(format!("user mapping lookup failed: {e}")))?;
    let (role, Some(server)) = found else {
        // The mapping is gone: nothing to keep the token for.
        return Ok(());
    };
    let text = |s: &str| CString::new(s).map_err(|_| SequinError::internal("a name with a NUL byte"));
    unsafe {
        let user = pg_sys::palloc0(std::mem::size_of::<pg_sys::RoleSpec>()) as *mut pg_sys::RoleSpec;
        (*user).type_ = pg_sys::NodeTag::T_RoleSpec;
        (*user).location = -1;
        match role {
            Some(role) => {
                (*user).roletype = pg_sys::RoleSpecType::ROLESPEC_CSTRING;
                (*user).rolename = pg_sys::pstrdup(text(&role)?.as_ptr());
            }
            None => (*user).roletype = pg_sys::RoleSpecType::ROLESPEC_PUBLIC,
        }
        let value = pg_sys::makeString(pg_sys::pstrdup(text(token)?.as_ptr()));
        let option = pg_sys::makeDefElemExtended(
            std::ptr::null_mut(),
            pg_sys::pstrdup(c"refresh_token".as_ptr()),
            value.cast(),
            pg_sys::DefElemAction::DEFELEM_SET,
            -1,
        );
        let stmt = pg_sys::palloc0(std::mem::size_of::<pg_sys::AlterUserMappingStmt>()) as *mut pg_sys::AlterUserMappingStmt;
        (*stmt).type_ = pg_sys::NodeTag::T_AlterUserMappingStmt;
        (*stmt).user = user;
        (*stmt).servername = pg_sys::pstrdup(text(&server)?.as_ptr());
        (*stmt).options = pg_sys::lappend(std::ptr::null_mut(), option.cast());
        pg_sys::AlterUserMapping(stmt);
    }
    Ok(())
}
