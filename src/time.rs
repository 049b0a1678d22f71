//! Wall-clock helpers: "now", ISO 8601 renderings of Unix times that
//! Postgres parses back (calendar arithmetic by `jiff`), and durations.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// `1700000000_123456` → `2023-11-14T22:13:20.123456Z`. A time beyond
/// years ±9999 (an API's garbage, saturated) is Postgres' `infinity` or
/// `-infinity`, which a timestamptz column takes.
pub fn iso8601_from_us(us: i64) -> String {
    match jiff::Timestamp::from_microsecond(us) {
        Ok(timestamp) => timestamp.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        Err(_) if us < 0 => "-infinity".to_string(),
        Err(_) => "infinity".to_string(),
    }
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
        assert_eq!(iso8601_from_us(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(iso8601_from_us(i64::MAX), "infinity");
        assert_eq!(iso8601_from_us(i64::MIN), "-infinity");
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
