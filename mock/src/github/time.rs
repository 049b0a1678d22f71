//! GitHub's timestamps: ISO 8601 in UTC with second precision
//! (`2026-01-01T00:00:00Z`); the calendar arithmetic is Salesforce's.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::salesforce::time::{civil_from_days, parse_datetime};

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn now_ms() -> i64 {
    crate::salesforce::time::now_ms()
}

/// `2026-01-01T00:00:00Z`
pub fn format(s: i64) -> String {
    let (y, m, d) = civil_from_days(s.div_euclid(86_400));
    let rest = s.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// An ISO 8601 datetime with a zone → unix seconds (fractions dropped).
pub fn parse(s: &str) -> Option<i64> {
    parse_datetime(s).map(|ms| ms.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(format(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(parse("2026-01-01T00:00:00Z"), Some(1_767_225_600));
        assert_eq!(parse("2026-01-01T01:00:00+01:00"), Some(1_767_225_600));
        assert_eq!(parse("yesterday"), None);
    }
}
