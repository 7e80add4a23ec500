//! The bounds every span is held to where it enters the model (OTLP and Zipkin alike), so that
//! no later step — an index key, a `µs × 1000`, an end time — meets a value it cannot handle.
//! A span outside them is refused on its own, with the reason, like any other span that
//! cannot be stored.

use crate::span::{KeyValue, Span};

/// The longest service name accepted, in bytes.
pub const MAX_SERVICE_NAME_BYTES: usize = 256;
/// The longest operation (span) name accepted, in bytes.
pub const MAX_OPERATION_NAME_BYTES: usize = 1024;
/// The longest tag, process tag or log field key accepted, in bytes.
pub const MAX_TAG_KEY_BYTES: usize = 256;
/// The latest time a span may start or end, and a log may be written, in microseconds since the
/// Unix epoch: 2554-07-21T23:34:33.709551Z, the last microsecond whose nanoseconds fit the
/// `u64` that OTLP (and so api_v3) carries times in. Zipkin's microseconds go further; past
/// this they could only wrap.
pub const MAX_TIME_MICROS: u64 = u64::MAX / 1000;
/// [`MAX_TIME_MICROS`] as people read it.
pub const MAX_TIME_TEXT: &str = "2554-07-21T23:34:33.709551Z";

/// Why `span` cannot be stored, if it breaks a bound.
pub fn check_span(span: &Span) -> Result<(), String> {
    check_len(
        "the service name",
        &span.process.service_name,
        MAX_SERVICE_NAME_BYTES,
    )?;
    check_len(
        "the operation name",
        &span.operation_name,
        MAX_OPERATION_NAME_BYTES,
    )?;
    let keys = span
        .tags
        .iter()
        .chain(&span.process.tags)
        .chain(span.logs.iter().flat_map(|log| &log.fields));
    for KeyValue { key, .. } in keys {
        check_len("a tag key", key, MAX_TAG_KEY_BYTES)?;
    }
    if span.start_time > MAX_TIME_MICROS {
        return Err(format!(
            "the start time {} µs is after {MAX_TIME_TEXT}, the latest time OTLP can carry",
            span.start_time
        ));
    }
    match span.start_time.checked_add(span.duration) {
        Some(end) if end <= MAX_TIME_MICROS => {}
        _ => {
            return Err(format!(
                "the duration {} µs makes the span end after {MAX_TIME_TEXT}, the latest time OTLP can carry",
                span.duration
            ));
        }
    }
    if let Some(log) = span.logs.iter().find(|l| l.timestamp > MAX_TIME_MICROS) {
        return Err(format!(
            "a log's time {} µs is after {MAX_TIME_TEXT}, the latest time OTLP can carry",
            log.timestamp
        ));
    }
    Ok(())
}

fn check_len(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        // Not the value itself: it is what is too long to repeat.
        return Err(format!(
            "{what} is {} bytes long; the limit is {max} bytes",
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use crate::zipkin::{ZipkinSpan, spans_from_zipkin};

    proptest::proptest! {
        /// Whatever times a Zipkin span carries, a span that is accepted ends after it starts and
        /// its times in nanoseconds fit OTLP's u64.
        #[test]
        fn accepted_zipkin_times_never_wrap(timestamp: u64, duration: u64, log: u64) {
            let span: ZipkinSpan = serde_json::from_value(serde_json::json!({
                "traceId": "0a", "id": "01", "timestamp": timestamp, "duration": duration,
                "annotations": [{"timestamp": log, "value": "x"}]
            }))
            .unwrap();
            let (spans, rejected) = spans_from_zipkin(&[span]);
            proptest::prop_assert_eq!(spans.len() + rejected.len(), 1);
            for span in spans {
                let end = span.start_time.checked_add(span.duration).unwrap();
                proptest::prop_assert!(end.checked_mul(1000).is_some());
                proptest::prop_assert!(span.logs[0].timestamp.checked_mul(1000).is_some());
            }
        }
    }

    #[test]
    fn the_latest_time_is_written_right() {
        // 2554-07-21 is day 213_503 after the epoch; then 23:34:33.709551.
        let micros = (213_503u64 * 86_400 + 23 * 3600 + 34 * 60 + 33) * 1_000_000 + 709_551;
        assert_eq!(micros, super::MAX_TIME_MICROS);
    }
}
