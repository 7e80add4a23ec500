//! Parsing of query parameters the way Jaeger reads them: Go durations (`1.5ms`, `100us`,
//! `1h30m`) and RFC 3339 timestamps (`2026-11-24T05:00:00.123Z`).

/// A Go duration string, in microseconds. Fractions below a microsecond are dropped.
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
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
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
        rest = &rest[unit_len..];
    }
    Ok((total_ns / 1e3) as u64)
}

/// An RFC 3339 timestamp, in microseconds since the Unix epoch.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let invalid =
        || format!("cannot parse \"{text}\" as an RFC 3339 time (e.g. 2026-11-24T05:00:00Z)");
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(invalid());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(range)
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
    if b.get(i) == Some(&b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(invalid());
        }
        let frac = &text[i..i + digits.min(6)];
        micros = frac.parse::<i64>().map_err(|_| invalid())? * 10i64.pow(6 - frac.len() as u32);
        i += digits;
    }
    let offset_secs = match &text[i..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) => {
            let hours: i64 = zone[1..3].parse().map_err(|_| invalid())?;
            let minutes: i64 = zone[4..6].parse().map_err(|_| invalid())?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return Err(invalid()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    if secs < 0 {
        return Err(invalid());
    }
    Ok(secs as u64 * 1_000_000 + micros as u64)
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
    }
}
