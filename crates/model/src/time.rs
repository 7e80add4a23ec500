//! Time, in one place for every crate: the clock (`now_micros`, the model's only I/O), civil
//! dates and the texts people and APIs write times in (RFC 3339, the console's
//! `2026-11-24T07:50` and `2026-11-24 07:50:12`), and durations (Go's syntax, which Jaeger's
//! parameters and meshtrace's flags use; the Jaeger UI search form's; and `850µs`/`12.3ms`
//! for people). Times are µs since the Unix epoch and durations µs, as in the model.
//!
//! Every parser takes text from outside (query strings, flags, forms): it answers with a value
//! or an error for any input, never a panic.

mod civil;
mod duration;
mod prometheus;

pub use civil::{
    ago, ago_at, civil_from_days, days_from_civil, format_time, parse_minute, parse_rfc3339,
};
pub use duration::{format_duration, parse_go_duration, parse_go_duration_std, parse_ui_duration};
pub use prometheus::parse_prometheus_duration;

/// Now, in µs since the Unix epoch (0 if the clock is before the epoch; saturated past the
/// year 586,000).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any text from a query string, a flag or a form: an answer, never a panic.
        #[test]
        fn no_text_panics_the_parsers(text in "\\PC{0,40}") {
            let _ = parse_rfc3339(&text);
            let _ = parse_go_duration(&text);
            let _ = parse_ui_duration(&text);
            let _ = parse_minute(&text);
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
            let _ = parse_minute(&format!("{}{}{}{}-{}{}-{}{}T{}{}:{}{}",
                fill[0], fill[1], fill[2], fill[3], fill[4], fill[5], fill[6], fill[7],
                fill[8], fill[9], fill[10], fill[11]));
        }

        /// Every time a u64 of µs holds formats as a date, and every day count in range
        /// survives the trip to a date and back.
        #[test]
        fn any_time_formats(micros: u64, days in -360_000_000i64..=360_000_000) {
            let _ = format_time(micros);
            let _ = format_duration(micros);
            let (y, m, d) = civil_from_days(days).unwrap_or_default();
            proptest::prop_assert_eq!(days_from_civil(y, m, d), Some(days));
        }
    }
}
