//! Wall-clock helpers without a date crate: the extension only needs "now"
//! and ISO 8601 renderings of Unix times that Postgres parses back.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// `1700000000_123456` → `2023-11-14T22:13:20.123456Z`.
pub fn iso8601_from_us(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses `5s`, `500ms`, `2min`, `1h`, or a bare number of seconds. Text
/// from an option or an API: anything that is not a positive duration
/// Duration can hold (zero, NaN, infinite, beyond u64 seconds) is None,
/// never a panic. Callers apply their own bounds.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => number,
        "ms" => number / 1000.0,
        "min" | "mins" | "minute" | "minutes" => number * 60.0,
        "h" | "hour" | "hours" => number * 3600.0,
        _ => return None,
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return None;
    }
    // from_secs_f64 panics past u64::MAX seconds ('99999999999999999999999h').
    std::time::Duration::try_from_secs_f64(seconds).ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_iso8601() {
        assert_eq!(iso8601_from_us(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(iso8601_from_us(1_700_000_000_123_456), "2023-11-14T22:13:20.123456Z");
        assert_eq!(iso8601_from_us(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2min"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("fast"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }

    #[test]
    fn absurd_durations_are_refused_without_panicking() {
        assert_eq!(parse_duration("99999999999999999999999h"), None);
        assert_eq!(parse_duration(&"9".repeat(400)), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("NaN"), None);
        assert_eq!(parse_duration("inf"), None);
        assert_eq!(parse_duration("1e400"), None);
        assert_eq!(parse_duration("."), None);
        assert_eq!(parse_duration("0.0000000000001s"), None);
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn parse_duration_never_panics(text in "\\PC{0,40}") {
            if let Some(d) = parse_duration(&text) {
                proptest::prop_assert!(!d.is_zero());
            }
        }

        #[test]
        fn parse_duration_never_panics_on_numbers(number in proptest::num::f64::ANY, unit in "(|s|ms|min|h|hours|x)") {
            let _ = parse_duration(&format!("{number}{unit}"));
        }

        #[test]
        fn whole_seconds_parse_exactly(seconds in 1u64..1_000_000_000) {
            proptest::prop_assert_eq!(parse_duration(&format!("{seconds}s")), Some(Duration::from_secs(seconds)));
        }
    }
}
