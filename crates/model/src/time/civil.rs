//! Civil dates (proleptic Gregorian, UTC) and the texts times are written in: RFC 3339 (the
//! Jaeger API's parameters), `2026-11-24T07:50` (what the console's date-time inputs send),
//! `2026-11-24 07:50:12` and `5m ago` (what the console shows).

/// The years [`days_from_civil`] takes: far past the last time a `u64` of µs holds (year
/// 586,524), and near enough that no step of its arithmetic comes close to `i64`'s limits.
const YEARS: std::ops::RangeInclusive<i64> = -1_000_000..=1_000_000;
/// The days [`civil_from_days`] takes: about ±985,000 years, all inside [`YEARS`].
const DAYS: std::ops::RangeInclusive<i64> = -360_000_000..=360_000_000;

const MICROS_PER_SECOND: u64 = 1_000_000;
const SECONDS_PER_DAY: u64 = 86_400;

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`). The day is not checked against the month's length: February 31 is
/// March 2 or 3, as the callers have always read it. `None` for a month outside 1–12, a day
/// outside 1–31 or a year outside ±1,000,000.
// The guard bounds every operand, so no step below can overflow.
#[allow(clippy::arithmetic_side_effects)]
pub fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    if !YEARS.contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Years start in March, so that the leap day ends a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let march_month = (month + 9) % 12;
    let day_of_year = (153 * march_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// The date (year, month 1–12, day 1–31) `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`); `None` outside ±360,000,000 days.
// The guard bounds every operand, so no step below can overflow.
#[allow(clippy::arithmetic_side_effects)]
pub fn civil_from_days(days: i64) -> Option<(i64, i64, i64)> {
    if !DAYS.contains(&days) {
        return None;
    }
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    Some((year, month, day))
}

/// Seconds since the epoch of a day and a time of day, `None` on overflow.
fn seconds(days: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
    days.checked_mul(86_400)?
        .checked_add(hour.checked_mul(3_600)?)?
        .checked_add(minute.checked_mul(60)?)?
        .checked_add(second)
}

/// An RFC 3339 timestamp (`2026-11-24T05:00:00.123Z`, `2026-11-24T06:00:00+01:00`), in µs
/// since the Unix epoch. Digits past the microsecond are dropped; times before the epoch are
/// refused.
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
            .and_then(digits)
            .and_then(|n| i64::try_from(n).ok())
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
    let rest = text.get(19..).ok_or_else(invalid)?;
    let (micros, zone) = match rest.strip_prefix('.') {
        Some(fraction) => {
            let end = fraction
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(fraction.len());
            let (fraction, zone) = fraction.split_at_checked(end).ok_or_else(invalid)?;
            (fraction_micros(fraction).ok_or_else(invalid)?, zone)
        }
        None => (0, rest),
    };
    let offset = match zone {
        "Z" | "z" => 0,
        _ => zone_offset_seconds(zone).ok_or_else(invalid)?,
    };
    let secs = days_from_civil(year, month, day)
        .and_then(|days| seconds(days, hour, minute, second))
        .and_then(|secs| secs.checked_sub(offset))
        .ok_or_else(invalid)?;
    u64::try_from(secs)
        .ok()
        .and_then(|secs| secs.checked_mul(MICROS_PER_SECOND))
        .and_then(|us| us.checked_add(micros))
        .ok_or_else(invalid)
}

/// The value of a non-empty run of ASCII digits.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A second's fraction (the digits after the point) in µs: six digits are microseconds, fewer
/// are scaled up (`5` is 500,000 µs), more are cut.
fn fraction_micros(fraction: &str) -> Option<u64> {
    let kept = fraction.get(..6).unwrap_or(fraction);
    let mut micros = digits(kept)?;
    for _ in kept.len()..6 {
        micros = micros.checked_mul(10)?;
    }
    Some(micros)
}

/// `+HH:MM` or `-HH:MM`, in seconds east of UTC.
fn zone_offset_seconds(zone: &str) -> Option<i64> {
    let (sign, clock) = zone.split_at_checked(1)?;
    let (hours, minutes) = clock.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let offset = seconds(0, i64::try_from(digits(hours)?).ok()?, 0, 0)?
        .checked_add(i64::try_from(digits(minutes)?).ok()?.checked_mul(60)?)?;
    match sign {
        "+" => Some(offset),
        "-" => offset.checked_neg(),
        _ => None,
    }
}

/// `2026-11-24T07:50` (UTC, what an HTML date-time input sends) → µs since the epoch.
pub fn parse_minute(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute) = (t.next()??, t.next()??);
    if hour > 23 || minute > 59 {
        return None;
    }
    let secs = seconds(days_from_civil(year, month, day)?, hour, minute, 0)?;
    u64::try_from(secs).ok()?.checked_mul(MICROS_PER_SECOND)
}

/// µs since the epoch → `2026-11-24 07:50:12` (UTC).
pub fn format_time(micros: u64) -> String {
    let secs = micros / MICROS_PER_SECOND;
    let (days, rest) = (secs / SECONDS_PER_DAY, secs % SECONDS_PER_DAY);
    // A u64 of µs is at most 213,503,982 days: always a date.
    let Some((y, m, d)) = i64::try_from(days).ok().and_then(civil_from_days) else {
        return format!("{micros}µs");
    };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// How long before now `micros` is, in words: `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(micros: u64) -> String {
    ago_at(super::now_micros(), micros)
}

/// How long before `now` `micros` is, in words (a time after `now` is `0s ago`).
pub fn ago_at(now: u64, micros: u64) -> String {
    let secs = now.saturating_sub(micros) / MICROS_PER_SECOND;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / SECONDS_PER_DAY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates whose day numbers are known from elsewhere: Unix timestamps of their midnights
    /// divided by 86,400.
    #[test]
    fn civil_dates_match_known_days() {
        for (date, days) in [
            ((1970, 1, 1), 0),
            ((1969, 12, 31), -1),
            ((2000, 1, 1), 10_957),    // 946684800
            ((2024, 2, 29), 19_782),   // 1709164800
            ((2038, 1, 19), 24_855),   // 2147483647 is 2038-01-19T03:14:07Z
            ((1900, 3, 1), -25_508),   // -2203891200
            ((2554, 7, 21), 213_503),  // limits::MAX_TIME_TEXT's day
            ((1600, 2, 29), -135_081), // -11670912000
        ] {
            assert_eq!(
                days_from_civil(date.0, date.1, date.2),
                Some(days),
                "{date:?}"
            );
            assert_eq!(civil_from_days(days), Some(date), "{days}");
        }
        // February 31 reads as March 2 (or 3), as it always has.
        assert_eq!(days_from_civil(2023, 2, 31), days_from_civil(2023, 3, 3));
        assert_eq!(days_from_civil(2026, 13, 1), None);
        assert_eq!(days_from_civil(2026, 1, 0), None);
        assert_eq!(days_from_civil(i64::MAX, 1, 1), None);
        assert_eq!(civil_from_days(i64::MIN), None);
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
        assert_eq!(
            parse_rfc3339("2024-01-31T04:28:29.5-01:00"),
            Ok(1_706_678_909_500_000)
        );
        assert!(parse_rfc3339("2024-13-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("2026-01-01T00:00:00+0é000").is_err());
        assert!(parse_rfc3339("2026-01-01T00:00:00+-1:00").is_err());
        assert!(parse_rfc3339("2026-01-01T00:00:00.Z").is_err());
        assert!(parse_rfc3339("1969-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn minutes_and_formatted_times() {
        let micros = parse_minute("2026-11-24T07:50").unwrap();
        assert_eq!(micros, 1_795_506_600_000_000);
        assert_eq!(format_time(micros), "2026-11-24 07:50:00");
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(u64::MAX), "586524-01-19 08:01:49");
        assert!(parse_minute("2026-13-01T00:00").is_none());
        assert!(parse_minute("2026-11-24").is_none());
        assert!(parse_minute("99999999999-11-24T00:00").is_none());
    }

    #[test]
    fn ages_in_words() {
        let now = 10 * 86_400 * 1_000_000;
        assert_eq!(ago_at(now, now - 42_000_000), "42s ago");
        assert_eq!(ago_at(now, now - 300_000_000), "5m ago");
        assert_eq!(ago_at(now, now - 3 * 3_600_000_000), "3h ago");
        assert_eq!(ago_at(now, 0), "10d ago");
        assert_eq!(ago_at(now, now + 5), "0s ago");
    }
}
