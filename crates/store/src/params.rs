//! Parsing of query parameters the way Jaeger reads them: Go durations (`1.5ms`, `100us`,
//! `1h30m`) and RFC 3339 timestamps (`2026-11-24T05:00:00.123Z`). Both take text from a
//! request: they return an error for anything they cannot read, never panic.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

/// A Go duration string, in microseconds. Fractions below a microsecond are dropped; a
/// duration longer than Go's `time.Duration` holds (about 292 years) is refused, as Go refuses it.
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let mut rest = text.trim();
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() || rest.starts_with('-') {
        return Err(invalid());
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration \"{text}\""))?;
        if number_len == 0 {
            return Err(invalid());
        }
        // `find` returns char boundaries, so these splits cannot fail; `?` rather than a panic.
        let (number, after) = rest.split_at_checked(number_len).ok_or_else(invalid)?;
        let number: f64 = number.parse().map_err(|_| invalid())?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at_checked(unit_len).ok_or_else(invalid)?;
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => {
                return Err(format!(
                    "time: unknown unit \"{unit}\" in duration \"{text}\""
                ));
            }
        };
        total_ns += number * scale;
        rest = after;
    }
    // Go's limit: an int64 of nanoseconds.
    if total_ns.is_nan() || total_ns > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok((total_ns / 1e3) as u64)
}

/// An RFC 3339 timestamp, in microseconds since the Unix epoch.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let invalid =
        || format!("cannot parse \"{text}\" as an RFC 3339 time (e.g. 2026-11-24T05:00:00Z)");
    // Every character of an RFC 3339 time is ASCII: refusing anything else up front keeps
    // every byte offset below on a character boundary.
    if !text.is_ascii() {
        return Err(invalid());
    }
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied();
    if b.len() < 20
        || at(4) != Some(b'-')
        || at(7) != Some(b'-')
        || !matches!(at(10), Some(b'T' | b't' | b' '))
        || at(13) != Some(b':')
        || at(16) != Some(b':')
    {
        return Err(invalid());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(range)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(invalid)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(invalid());
    }
    let mut i = 19;
    let mut micros: i64 = 0;
    if at(i) == Some(b'.') {
        i += 1;
        let digits = b
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(invalid());
        }
        let kept = digits.min(6);
        let frac = num(i..i + kept)?;
        // Six digits are microseconds; fewer are scaled up (".5" is 500000 µs).
        micros = frac * 10i64.pow(6 - kept as u32);
        i += digits;
    }
    let offset_secs = match text.get(i..).ok_or_else(invalid)? {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && at(i + 3) == Some(b':') => {
            let sign = match at(i) {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(invalid()),
            };
            let (hours, minutes) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return Err(invalid()),
    };
    // Four-digit years keep every step below far from i64's limits.
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).map_err(|_| invalid())?;
    let micros = u64::try_from(micros).map_err(|_| invalid())?;
    secs.checked_mul(1_000_000)
        .and_then(|s| s.checked_add(micros))
        .ok_or_else(invalid)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("100us"), Ok(100));
        assert_eq!(parse_go_duration("1.5ms"), Ok(1500));
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000));
        assert_eq!(parse_go_duration("2µs"), Ok(2));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert!(
            parse_go_duration("10")
                .unwrap_err()
                .contains("missing unit")
        );
        assert!(
            parse_go_duration("10parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339("2024-01-31T05:28:29.209712Z"),
            Ok(1_706_678_909_209_712)
        );
        assert_eq!(
            parse_rfc3339("2024-01-31T06:28:29.2097129+01:00"),
            Ok(1_706_678_909_209_712)
        );
        assert!(parse_rfc3339("2024-13-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("2026-01-01T00:00:00+0é000").is_err());
        assert!(parse_rfc3339("2026-01-01T00:00:00+-1:00").is_err());
    }

    proptest::proptest! {
        /// Any text from a query string: an answer, never a panic.
        #[test]
        fn no_text_panics_the_parsers(text in "\\PC{0,40}") {
            let _ = parse_rfc3339(&text);
            let _ = parse_go_duration(&text);
        }

        /// Text shaped like an RFC 3339 time, with any characters where the digits go and a
        /// zone of digits, colons and a two-byte character.
        #[test]
        fn no_near_time_panics(
            fill in proptest::collection::vec("\\PC", 12),
            zone in "[+-][0-9:é]{3,5}",
        ) {
            let text = format!(
                "{}{}{}{}-{}{}-{}{}T{}{}:{}{}:00{zone}",
                fill[0], fill[1], fill[2], fill[3], fill[4], fill[5], fill[6], fill[7],
                fill[8], fill[9], fill[10], fill[11]
            );
            let _ = parse_rfc3339(&text);
            let _ = parse_rfc3339(&format!("2026-01-01T00:00:00{zone}"));
        }
    }
}
