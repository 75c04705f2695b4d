//! The value syntaxes Heartbeat's configuration shares: time values, booleans, plain numbers.
//!
//! Pure functions on one token; they know nothing of directives or files (the caller turns a
//! `None` into an error naming the line). Both ha.cf and the YAML file use them, so a value
//! means the same thing in either.

use std::time::Duration;

/// The longest number (digits, both sides of the point) a time value may have. Keeps the
/// exact integer arithmetic below far from overflow.
const MAX_TIME_DIGITS: usize = 24;

/// What a time value must look like, for error messages.
pub(crate) const TIME_SYNTAX: &str =
    "a time: a number, optionally with a decimal part, in seconds or followed by ms or us";

/// Parses a time value as Heartbeat's `cl_get_msec` does: a decimal number with an optional
/// unit (none = seconds, `ms`/`msec`, `us`/`usec`; `s`/`sec` is also accepted), case-insensitive,
/// rounded half up to whole milliseconds (`499us` is 0 ms, `500us` is 1 ms).
pub(crate) fn parse_time(text: &str) -> Option<Duration> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    let (per_unit_ms, per_unit_divisor): (u128, u128) =
        match unit.trim().to_ascii_lowercase().as_str() {
            "" | "s" | "sec" => (1000, 1),
            "ms" | "msec" => (1, 1),
            "us" | "usec" => (1, 1000),
            _ => return None,
        };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty())
        || fraction.contains('.')
        || whole.len() + fraction.len() > MAX_TIME_DIGITS
    {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let denominator = per_unit_divisor * scale;
    // Round half up exactly: floor((2·m·mult + d) / 2d).
    let millis = (2 * mantissa * per_unit_ms + denominator) / (2 * denominator);
    u64::try_from(millis).ok().map(Duration::from_millis)
}

/// Parses a boolean as Heartbeat's `cl_str_to_boolean`: true/on/yes/y/1 and
/// false/off/no/n/0, case-insensitive.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// What a boolean must look like, for error messages.
pub(crate) const BOOL_SYNTAX: &str = "a boolean: true, on, yes, y, 1, false, off, no, n or 0";

/// Parses a decimal integer of digits only (no sign, no unit) within `min..=max`.
pub(crate) fn parse_uint(text: &str, min: u64, max: u64) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = text.parse().ok()?;
    (min..=max).contains(&value).then_some(value)
}

/// A duration the way an operator writes it: whole seconds as `Ns`, anything else as `Nms`.
pub(crate) fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn time_without_unit_is_seconds() {
        assert_eq!(parse_time("2"), ms(2000));
        assert_eq!(parse_time("1.5"), ms(1500));
        assert_eq!(parse_time(".5"), ms(500));
        assert_eq!(parse_time("0.001"), ms(1));
        assert_eq!(parse_time("0"), ms(0));
    }

    #[test]
    fn time_units_are_case_insensitive_and_may_follow_a_space() {
        assert_eq!(parse_time("200ms"), ms(200));
        assert_eq!(parse_time("200MS"), ms(200));
        assert_eq!(parse_time("200 msec"), ms(200));
        assert_eq!(parse_time("1000000us"), ms(1000));
        assert_eq!(parse_time("1000000usec"), ms(1000));
        assert_eq!(parse_time("3s"), ms(3000));
        assert_eq!(parse_time("2.5sec"), ms(2500));
    }

    #[test]
    fn time_rounds_half_up_to_milliseconds() {
        assert_eq!(parse_time("499us"), ms(0));
        assert_eq!(parse_time("500us"), ms(1));
        assert_eq!(parse_time("501us"), ms(1));
        assert_eq!(parse_time("1.0004"), ms(1000));
        assert_eq!(parse_time("1.0005"), ms(1001));
        assert_eq!(parse_time("2.5ms"), ms(3));
    }

    #[test]
    fn malformed_times_are_refused() {
        for bad in [
            "",
            "ms",
            "1x",
            "1.2.3",
            "-1",
            "1 minute",
            "1msx",
            ".",
            "1e3",
            "1234567890123456789012345",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn booleans_follow_heartbeat_spellings() {
        for word in ["true", "ON", "Yes", "y", "1"] {
            assert_eq!(parse_bool(word), Some(true), "{word}");
        }
        for word in ["false", "Off", "NO", "n", "0"] {
            assert_eq!(parse_bool(word), Some(false), "{word}");
        }
        for word in ["", "enabled", "2", "t"] {
            assert_eq!(parse_bool(word), None, "{word}");
        }
    }

    #[test]
    fn integers_are_digits_within_range() {
        assert_eq!(parse_uint("694", 1, 65535), Some(694));
        assert_eq!(parse_uint("0694", 1, 65535), Some(694));
        assert_eq!(parse_uint("0", 1, 65535), None);
        assert_eq!(parse_uint("65536", 1, 65535), None);
        assert_eq!(parse_uint("+5", 0, 9), None);
        assert_eq!(parse_uint("5x", 0, 9), None);
        assert_eq!(parse_uint("", 0, 9), None);
    }

    #[test]
    fn durations_print_as_seconds_when_whole() {
        assert_eq!(format_duration(Duration::from_millis(30_000)), "30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
