//! GitHub's primary rate limit (requests per window, `x-ratelimit-*` on
//! every reply; a 304 is not counted) and the secondary limit the mock
//! imitates: mutating requests closer together than an interval answer 403
//! with `retry-after`.

use serde::{Deserialize, Serialize};

use super::errors::{GhError, RATE_LIMIT_DOCS};
use super::store::VIEWER_ID;
use super::time;
use crate::http::Reply;

/// Per-account knobs, `/_admin/github/settings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub rate_limit: u64,
    pub rate_window_s: i64,
    /// 403 (GitHub's usual) or 429 once the primary limit is spent.
    pub limit_status: u16,
    /// 0 disables the secondary limit.
    pub min_mutation_interval_ms: i64,
    pub secondary_retry_after_s: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            rate_limit: 5000,
            rate_window_s: 3600,
            limit_status: 403,
            min_mutation_interval_ms: 1000,
            secondary_retry_after_s: 60,
        }
    }
}

pub struct RateLimit {
    pub settings: Settings,
    window_start_s: i64,
    used: u64,
    last_mutation_ms: Option<i64>,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            settings: Settings::default(),
            window_start_s: time::now_s(),
            used: 0,
            last_mutation_ms: None,
        }
    }
}

pub fn is_mutation(method: &str) -> bool {
    matches!(method, "POST" | "PATCH" | "PUT" | "DELETE")
}

impl RateLimit {
    pub fn reset_s(&self) -> i64 {
        self.window_start_s + self.settings.rate_window_s
    }

    pub fn remaining(&self) -> u64 {
        self.settings.rate_limit.saturating_sub(self.used)
    }

    /// Starts a new window once the old one has ended.
    pub fn roll(&mut self, now_s: i64) {
        if now_s >= self.reset_s() {
            self.window_start_s = now_s;
            self.used = 0;
        }
    }

    /// Admin: pretend `remaining` requests are left in this window.
    pub fn set_remaining(&mut self, remaining: u64) {
        self.used = self.settings.rate_limit.saturating_sub(remaining);
    }

    /// Admin: make the window end `reset_in_s` from now.
    pub fn set_reset_in(&mut self, now_s: i64, reset_in_s: i64) {
        self.window_start_s = now_s + reset_in_s - self.settings.rate_window_s;
    }

    /// Refuses the request when the window's requests are spent.
    pub fn check_primary(&self, request_id: &str) -> Result<(), GhError> {
        if self.remaining() > 0 {
            return Ok(());
        }
        Err(GhError::new(
            self.settings.limit_status,
            format!(
                "API rate limit exceeded for user ID {VIEWER_ID}. If you reach out to GitHub Support for help, please include the request ID {request_id} and timestamp {} UTC.",
                time::format(time::now_s()).replace('T', " ").trim_end_matches('Z')
            ),
            RATE_LIMIT_DOCS,
        ))
    }

    /// Refuses a mutation that follows the previous one too closely;
    /// records the time of one that passes.
    pub fn check_secondary(
        &mut self,
        method: &str,
        now_ms: i64,
        request_id: &str,
    ) -> Result<(), GhError> {
        let interval = self.settings.min_mutation_interval_ms;
        if !is_mutation(method) || interval <= 0 {
            return Ok(());
        }
        if self
            .last_mutation_ms
            .is_some_and(|last| now_ms - last < interval)
        {
            let retry_after = self.settings.secondary_retry_after_s;
            return Err(GhError::new(
                403,
                format!("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID {request_id}."),
                &format!("{RATE_LIMIT_DOCS}#about-secondary-rate-limits"),
            )
            .header("retry-after", retry_after.to_string()));
        }
        self.last_mutation_ms = Some(now_ms);
        Ok(())
    }

    pub fn count(&mut self) {
        self.used += 1;
    }

    pub fn add_headers(&self, reply: &mut Reply) {
        reply.set_header("x-ratelimit-limit", self.settings.rate_limit.to_string());
        reply.set_header("x-ratelimit-remaining", self.remaining().to_string());
        reply.set_header("x-ratelimit-used", self.used.to_string());
        reply.set_header("x-ratelimit-reset", self.reset_s().to_string());
        reply.set_header("x-ratelimit-resource", "core");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_window_and_secondary_interval() {
        let mut r = RateLimit::default();
        r.settings.rate_limit = 2;
        r.count();
        r.count();
        assert_eq!(r.check_primary("x").unwrap_err().status, 403);
        r.roll(r.reset_s());
        assert_eq!(r.remaining(), 2);
        assert!(r.check_secondary("GET", 0, "x").is_ok());
        assert!(r.check_secondary("POST", 0, "x").is_ok());
        let e = r.check_secondary("PATCH", 999, "x").unwrap_err();
        assert_eq!(
            e.headers,
            vec![("retry-after".to_string(), "60".to_string())]
        );
        assert!(r.check_secondary("DELETE", 1000, "x").is_ok());
    }
}
