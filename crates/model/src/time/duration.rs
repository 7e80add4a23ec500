//! Durations, in µs: two languages read on purpose — Go's (`1h30m`, `1.5ms`, `100us`), which
//! Jaeger's query parameters and meshtrace's flags take; and the Jaeger UI search form's
//! (`10ms`, `1.5s`, or bare microseconds), which the console's `/jaeger/search` takes — and the
//! short form people read (`850µs`, `12.3ms`, `1.25s`).

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

/// [`parse_go_duration`] as a [`std::time::Duration`] (for flags).
pub fn parse_go_duration_std(text: &str) -> Result<std::time::Duration, String> {
    parse_go_duration(text).map(std::time::Duration::from_micros)
}

/// A duration as the Jaeger UI's search form writes it (`10ms`, `1.5s`, `250us`), or bare
/// microseconds; `None` when it is neither.
pub fn parse_ui_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at_checked(split)?;
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "" | "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some((number * scale) as u64)
}

/// A duration in µs for people: `850µs`, `12.3ms`, `1.25s`.
pub fn format_duration(micros: u64) -> String {
    if micros < 1000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{:.1}ms", micros as f64 / 1e3)
    } else {
        format!("{:.2}s", micros as f64 / 1e6)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
    fn durations_as_the_jaeger_ui_writes_them() {
        assert_eq!(parse_ui_duration("10ms"), Some(10_000));
        assert_eq!(parse_ui_duration("1.5s"), Some(1_500_000));
        assert_eq!(parse_ui_duration("250"), Some(250));
        assert_eq!(parse_ui_duration("ten"), None);
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(format_duration(850), "850µs");
        assert_eq!(format_duration(12_345), "12.3ms");
        assert_eq!(format_duration(1_250_000), "1.25s");
    }
}
