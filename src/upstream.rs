//! Calling a server's API: authentication, the server's timeout, and turning
//! every failure (transport or refusal) into the user's error.

use crate::error::{Result, SequinError};
use crate::fdw::options::{Credentials, ServerConfig};
use crate::http;
use crate::providers::{ApiRequest, ApiResponse};

/// Sends `request` and returns the 2xx reply; anything else is an error
/// in the words of the API.
pub fn call(
    server: &ServerConfig,
    credentials: &Credentials,
    request: &ApiRequest,
    interrupted: &dyn Fn() -> bool,
) -> Result<ApiResponse> {
    let provider = server.provider;
    let headers = provider.auth_headers(&credentials.api_key);
    let response = http::send(&server.base_url, &headers, request, server.timeout, interrupted)
        .map_err(|e| e.into_error(provider.label(), request))?;
    if response.is_success() {
        Ok(response)
    } else {
        Err(provider.error(&response).into_error(provider.label(), request))
    }
}

/// Interprets a reply with a provider parser, mapping a parse failure to
/// the user's error.
pub fn parse<T>(
    server: &ServerConfig,
    request: &ApiRequest,
    parsed: std::result::Result<T, crate::providers::ApiError>,
) -> Result<T, SequinError> {
    parsed.map_err(|e| e.into_error(server.provider.label(), request))
}
