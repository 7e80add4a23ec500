//! Durations, in µs: two languages read on purpose — Go's (`1h30m`, `1.5ms`, `100us`), which
//! Jaeger's query parameters and meshtrace's flags take; and the Jaeger UI search form's
//! (`10ms`, `1.5s`, or bare microseconds), which the console's `/jaeger/search` takes — and the
//! short form people read (`850µs`, `12.3ms`, `1.25s`).

/// The longest duration Go's `time.Duration` holds: an `int64` of nanoseconds (about 292
/// years).
const MAX_NANOS: u64 = i64::MAX.unsigned_abs();

/// A Go duration string (`1h30m`, `1.5ms`, `100us`), in microseconds, read as Go's
/// `time.ParseDuration` reads it, with two departures kept from before: surrounding whitespace
/// is ignored, and a sign `-` is refused (nothing here means a negative duration). Fractions
/// below a microsecond are dropped; a duration longer than Go's `time.Duration` holds is
/// refused, as Go refuses it. The errors are Go's.
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let mut rest = text.trim();
    if rest.starts_with('-') {
        return Err(invalid());
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut nanos: u64 = 0;
    while !rest.is_empty() {
        let (number, after) = Decimal::split(rest).ok_or_else(invalid)?;
        // A unit runs to the next digit or point.
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at_checked(unit_end).ok_or_else(invalid)?;
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{text}\""));
        }
        let per = go_unit_nanos(unit)
            .ok_or_else(|| format!("time: unknown unit \"{unit}\" in duration \"{text}\""))?;
        nanos = number
            .times(per)
            .and_then(|n| n.checked_add(nanos))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or_else(invalid)?;
        rest = after;
    }
    Ok(nanos / 1_000)
}

/// Nanoseconds in one of Go's units (`µs` is U+00B5, `μs` U+03BC; Go takes both).
fn go_unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// A decimal number as durations write it: digits, a point, digits; either side of the point
/// may be empty, not both.
struct Decimal<'a> {
    whole: &'a str,
    fraction: &'a str,
}

impl<'a> Decimal<'a> {
    /// The number at the start of `text` and what follows it; `None` when there is none.
    fn split(text: &'a str) -> Option<(Decimal<'a>, &'a str)> {
        let digits_end = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (whole, rest) = text.split_at_checked(digits_end(text))?;
        let (fraction, rest) = match rest.strip_prefix('.') {
            Some(after) => after.split_at_checked(digits_end(after))?,
            None => ("", rest),
        };
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        Some((Decimal { whole, fraction }, rest))
    }

    /// The number times `per`, what is left below one dropped; `None` past `u64`.
    fn times(&self, per: u64) -> Option<u64> {
        let whole = self.whole.chars().try_fold(0u64, |n, c| {
            n.checked_mul(10)?.checked_add(u64::from(c.to_digit(10)?))
        })?;
        whole
            .checked_mul(per)?
            .checked_add(self.fraction_times(per))
    }

    /// The fraction times `per`, as Go computes it: the leading digits while they fit in 63
    /// bits (nineteen or so; later ones are ignored), scaled in floating point. Exact for any
    /// fraction written in practice (`1.001ms` is 1,001 µs), and Go's answer for the rest
    /// (`0.3333333333333333333h` is 20 minutes).
    fn fraction_times(&self, per: u64) -> u64 {
        const LIMIT: u64 = 1 << 63;
        let mut numerator: u64 = 0;
        let mut scale: f64 = 1.0;
        for digit in self.fraction.chars().filter_map(|c| c.to_digit(10)) {
            let next = numerator
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(digit)))
                .filter(|n| *n <= LIMIT);
            let Some(next) = next else { break };
            numerator = next;
            scale *= 10.0;
        }
        // At most `per` (3.6e12 for hours): the cast neither saturates nor loses a unit.
        (numerator as f64 * (per as f64 / scale)) as u64
    }
}

/// [`parse_go_duration`] as a [`std::time::Duration`] (for flags).
pub fn parse_go_duration_std(text: &str) -> Result<std::time::Duration, String> {
    parse_go_duration(text).map(std::time::Duration::from_micros)
}

/// A duration as the Jaeger UI's search form writes it (`10ms`, `1.5s`, `250us`), or bare
/// microseconds; `None` when it is neither. One number and one unit (`us`, `µs`, `ms`, `s`,
/// `m`, `h`), spaces allowed around them; a value past `u64` is `u64::MAX` µs.
pub fn parse_ui_duration(text: &str) -> Option<u64> {
    let (number, unit) = Decimal::split(text.trim())?;
    let per = match unit.trim() {
        "" | "us" | "µs" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        _ => return None,
    };
    Some(number.times(per).unwrap_or(u64::MAX))
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
#[allow(clippy::arithmetic_side_effects)]
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

    /// The non-negative cases of Go's own table for `time.ParseDuration` (src/time/time_test.go,
    /// `parseDurationTests`), with Go's values in nanoseconds; meshtrace answers in µs.
    #[test]
    fn go_durations_as_go_reads_them() {
        for (text, nanos) in [
            ("0", 0u64),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1478s", 1_478_000_000_000),
            ("+5s", 5_000_000_000),
            ("+0", 0),
            ("5.0s", 5_000_000_000),
            ("5.6s", 5_600_000_000),
            ("5.s", 5_000_000_000),
            (".5s", 500_000_000),
            ("1.0s", 1_000_000_000),
            ("1.00s", 1_000_000_000),
            ("1.004s", 1_004_000_000),
            ("1.0040s", 1_004_000_000),
            ("100.00100s", 100_001_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000), // U+00B5
            ("12μs", 12_000), // U+03BC
            ("13ms", 13_000_000),
            ("14s", 14_000_000_000),
            ("15m", 900_000_000_000),
            ("16h", 57_600_000_000_000),
            ("3h30m", 12_600_000_000_000),
            ("10.5s4m", 250_500_000_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("39h9m14.425s", 140_954_425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", 9_223_372_036_854_775_807),
            ("9223372036854775.807us", 9_223_372_036_854_775_807),
            ("9223372036s854ms775us807ns", 9_223_372_036_854_775_807),
            ("0.100000000000000000000h", 360_000_000_000),
            ("0.830103483285477580700h", 2_988_372_539_827),
        ] {
            assert_eq!(parse_go_duration(text), Ok(nanos / 1_000), "{text}");
        }
        // The float arithmetic this replaced read 1.001ms as 1000 µs; Go reads 1,001,000 ns.
        assert_eq!(parse_go_duration("1.001ms"), Ok(1_001));
        assert_eq!(parse_go_duration("2.3s"), Ok(2_300_000));
    }

    /// Go's table of refusals (`parseDurationErrorTests`, the valid UTF-8 ones), with Go's
    /// messages where Go's and meshtrace's agree (Go escapes non-ASCII in them; meshtrace does
    /// not).
    #[test]
    fn go_refusals_as_go_refuses() {
        for text in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{FFFD}",
            "\u{FFFD} hello \u{FFFD} world",
            "9223372036854775810ns",
            "9223372036854775808ns",
            "9223372036854776us",
            "3000000h",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
        ] {
            let error = parse_go_duration(text).unwrap_err();
            assert!(error.starts_with("time: "), "{text}: {error}");
            assert!(error.contains(&format!("\"{text}\"")), "{text}: {error}");
        }
        assert_eq!(
            parse_go_duration(""),
            Err(r#"time: invalid duration """#.to_string())
        );
        assert_eq!(
            parse_go_duration("3"),
            Err(r#"time: missing unit in duration "3""#.to_string())
        );
        assert_eq!(
            parse_go_duration("1d"),
            Err(r#"time: unknown unit "d" in duration "1d""#.to_string())
        );
        assert_eq!(
            parse_go_duration("."),
            Err(r#"time: invalid duration ".""#.to_string())
        );
        assert_eq!(
            parse_go_duration("3000000h"),
            Err(r#"time: invalid duration "3000000h""#.to_string())
        );
    }

    /// Where meshtrace departs from Go on purpose: whitespace around the text is ignored, and
    /// no duration is negative (Go reads `-5s` and `-0`).
    #[test]
    fn go_durations_departures() {
        assert_eq!(parse_go_duration(" 1s\n"), Ok(1_000_000));
        for text in ["-5s", "-0", "-2m3.4s", "-9223372036854775808ns"] {
            assert_eq!(
                parse_go_duration(text),
                Err(format!("time: invalid duration \"{text}\"")),
            );
        }
    }

    #[test]
    fn durations_as_the_jaeger_ui_writes_them() {
        for (text, micros) in [
            ("10ms", Some(10_000)),
            ("1.5s", Some(1_500_000)),
            ("250", Some(250)),
            ("ten", None),
            (" 10 ms ", Some(10_000)),
            ("1.001ms", Some(1_001)),
            (".5ms", Some(500)),
            ("2m", Some(120_000_000)),
            ("1h", Some(3_600_000_000)),
            ("99999999999999999999999h", Some(u64::MAX)),
        ] {
            assert_eq!(parse_ui_duration(text), micros, "{text}");
        }
        // Not the form's language: Go's nanoseconds, several units, signs, a lone point.
        for text in ["10ns", "1h30m", "-5ms", "+5ms", ".", "1.2.3ms", "", "5 d"] {
            assert_eq!(parse_ui_duration(text), None, "{text}");
        }
    }

    proptest::proptest! {
        /// Hostile durations: long runs of digits, several points, every unit Go knows and some
        /// it does not (non-ASCII among them), signs and spaces. An answer, never a panic; what
        /// is accepted fits Go's `time.Duration`.
        #[test]
        fn hostile_durations_get_an_answer(
            text in "[+ -]?([0-9]{0,30}\\.?[0-9]{0,30}\\.?(ns|us|µs|μs|ms|s|m|h|d|秒|µ|\\u{FFFD}| |)){0,5}",
        ) {
            if let Ok(micros) = parse_go_duration(&text) {
                proptest::prop_assert!(micros <= MAX_NANOS / 1_000);
            }
            let _ = parse_ui_duration(&text);
        }

        /// Whole hours, minutes, seconds, milliseconds and microseconds mean what Go's
        /// documentation says they mean, in any order.
        #[test]
        fn units_mean_what_go_says(
            h in 0u64..100_000, m in 0u64..100_000, s in 0u64..100_000,
            ms in 0u64..100_000, us in 0u64..100_000,
        ) {
            let expected = h * 3_600_000_000 + m * 60_000_000 + s * 1_000_000 + ms * 1_000 + us;
            let forward = format!("{h}h{m}m{s}s{ms}ms{us}us");
            let backward = format!("{us}µs{ms}ms{s}s{m}m{h}h");
            proptest::prop_assert_eq!(parse_go_duration(&forward), Ok(expected));
            proptest::prop_assert_eq!(parse_go_duration(&backward), Ok(expected));
            proptest::prop_assert_eq!(parse_ui_duration(&format!("{h}h")), Some(h * 3_600_000_000));
        }
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(format_duration(850), "850µs");
        assert_eq!(format_duration(12_345), "12.3ms");
        assert_eq!(format_duration(1_250_000), "1.25s");
    }
}
