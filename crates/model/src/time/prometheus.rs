//! Prometheus durations (`30s`, `1h30m`, `7d`), as Prometheus reads its `step`, `timeout` and
//! `lookback_delta` parameters and Kiali reads `thanos_proxy`'s values: whole
//! numbers each followed by a unit, units from the largest to the smallest, each at most once
//! (`y` = 365 d, `w`, `d`, `h`, `m`, `s`, `ms`), or `0`. Not Go's durations: no fractions, and
//! days, weeks and years are units.

use std::time::Duration;

/// Each unit with its length in milliseconds, from the largest.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// The longest duration Prometheus accepts: what fits in Go's `time.Duration` (2^63 − 1 ns).
const MAX_MILLIS: u64 = (i64::MAX as u64) / 1_000_000;

/// Parses a Prometheus duration; `None` when it is not one.
pub fn parse_prometheus_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: u64 = 0;
    // Units must come in order: the next one must stand after this index of UNITS.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let value: u64 = number.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let index = UNITS.iter().position(|(name, _)| *name == unit)?;
        if index < next_unit {
            return None;
        }
        next_unit = index.checked_add(1)?;
        let (_, millis) = UNITS.get(index)?;
        total = total.checked_add(value.checked_mul(*millis)?)?;
        rest = after;
    }
    (total <= MAX_MILLIS).then(|| Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::parse_prometheus_duration as parse;
    use std::time::Duration;

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(
            parse("1y2w"),
            Some(Duration::from_secs((365 + 14) * 86_400))
        );
        assert_eq!(parse("1s500ms"), Some(Duration::from_millis(1_500)));
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn what_prometheus_refuses() {
        for bad in [
            "",
            "30",
            "s",
            "1.5h",
            "30m1h",
            "1h1h",
            "-1s",
            "1 s",
            "1S",
            "1hm",
            "30sec",
            "99999999999999999999s",
            "300y",
            "1ms1s",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        // 292 years fit in Go's duration; 293 do not.
        assert!(parse("292y").is_some());
        assert_eq!(parse("293y"), None);
    }
}
