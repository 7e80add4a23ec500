//! The layout of the keys (store layouts 2 and 3: layout 3 changed only the values of
//! `by_service`, see `codec/summary.rs`). Every part taken from input (service, span
//! kind, operation) is written as a length (LEB128 varint) followed by its bytes, so any byte,
//! NUL included, can be in a name, and no key of one service can fall in the range of another:
//! a varint is prefix-free, so `part(a)` is a prefix of `part(b)` only when `a == b`.
//! (Layout 1 ended a service with a NUL byte, which a service name could contain; see issue 13.)
//!
//! Parsing is strict: a key that is not exactly what this module writes is reported as not
//! decodable, never misread, and the caller skips it.

use meshtrace_model::{SpanId, TraceId};

/// trace ID (16) | start µs (8, big-endian) | span ID (8)
pub fn span_key(trace_id: TraceId, start: u64, span_id: SpanId) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(&trace_id.to_bytes());
    key.extend_from_slice(&start.to_be_bytes());
    key.extend_from_slice(&span_id.to_bytes());
    key
}

/// Reads a key written by [`span_key`]; None when it is not one.
pub fn parse_span_key(key: &[u8]) -> Option<(TraceId, u64, SpanId)> {
    let (trace, rest) = key.split_first_chunk::<16>()?;
    let (start, rest) = rest.split_first_chunk::<8>()?;
    let span: [u8; 8] = rest.try_into().ok()?;
    Some((
        TraceId(u128::from_be_bytes(*trace)),
        u64::from_be_bytes(*start),
        SpanId(u64::from_be_bytes(span)),
    ))
}

/// Appends one length-prefixed part.
fn put_part(out: &mut Vec<u8>, part: &[u8]) {
    let mut n = part.len() as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(part);
}

/// Splits one length-prefixed part off the front of `key`.
fn take_part(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    let mut rest = key;
    for shift in (0..64).step_by(7) {
        let (&byte, tail) = rest.split_first()?;
        rest = tail;
        len |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            let len = usize::try_from(len).ok()?;
            return (len <= rest.len()).then(|| rest.split_at(len));
        }
    }
    None
}

/// The prefix every index key of `service` starts with (in `by_service` and `operations`).
pub fn service_prefix(service: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(service.len().saturating_add(40));
    put_part(&mut key, service.as_bytes());
    key
}

/// The smallest key greater than every key that starts with `prefix` (None: no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if let Some(next) = last.checked_add(1) {
            end.push(next);
            return Some(end);
        }
    }
    None
}

/// `by_service`: part(service) | start µs (8) | trace ID (16) | span ID (8)
pub fn service_key(service: &str, start: u64, trace_id: TraceId, span_id: SpanId) -> Vec<u8> {
    let mut key = service_prefix(service);
    key.extend_from_slice(&start.to_be_bytes());
    key.extend_from_slice(&trace_id.to_bytes());
    key.extend_from_slice(&span_id.to_bytes());
    key
}

/// The (start, trace, span) of a `by_service` key that starts with `prefix`; None when the key
/// is not one written by [`service_key`] for that prefix.
pub fn parse_service_key(prefix: &[u8], key: &[u8]) -> Option<(u64, TraceId, SpanId)> {
    let suffix = key.strip_prefix(prefix)?;
    let (start, rest) = suffix.split_first_chunk::<8>()?;
    let (trace, rest) = rest.split_first_chunk::<16>()?;
    let span: [u8; 8] = rest.try_into().ok()?;
    Some((
        u64::from_be_bytes(*start),
        TraceId(u128::from_be_bytes(*trace)),
        SpanId(u64::from_be_bytes(span)),
    ))
}

/// The service, start, trace and span of any `by_service` key (for the data check).
pub fn parse_any_service_key(key: &[u8]) -> Option<(&[u8], u64, TraceId, SpanId)> {
    let (service, rest) = take_part(key)?;
    let (start, rest) = rest.split_first_chunk::<8>()?;
    let (trace, rest) = rest.split_first_chunk::<16>()?;
    let span: [u8; 8] = rest.try_into().ok()?;
    Some((
        service,
        u64::from_be_bytes(*start),
        TraceId(u128::from_be_bytes(*trace)),
        SpanId(u64::from_be_bytes(span)),
    ))
}

/// `operations`: part(service) | part(span kind) | part(operation)
pub fn operation_key(service: &str, kind: &str, operation: &str) -> Vec<u8> {
    let mut key = service_prefix(service);
    put_part(&mut key, kind.as_bytes());
    put_part(&mut key, operation.as_bytes());
    key
}

/// The (service, span kind, operation) of an `operations` key; None when it is not one.
pub fn parse_operation_key(key: &[u8]) -> Option<(&str, &str, &str)> {
    let (service, rest) = take_part(key)?;
    let (kind, rest) = take_part(rest)?;
    let (operation, rest) = take_part(rest)?;
    if !rest.is_empty() {
        return None;
    }
    Some((
        std::str::from_utf8(service).ok()?,
        std::str::from_utf8(kind).ok()?,
        std::str::from_utf8(operation).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_never_shares_a_prefix_with_another() {
        let normal = service_prefix("normal");
        let hostile = service_key("normal\0\0\0\0\0\0\0\0", 5, TraceId(1), SpanId(2));
        assert!(!hostile.starts_with(&normal));
        assert_eq!(parse_service_key(&normal, &hostile), None);
        let own = service_prefix("normal\0\0\0\0\0\0\0\0");
        assert_eq!(
            parse_service_key(&own, &hostile),
            Some((5, TraceId(1), SpanId(2)))
        );
        assert_eq!(
            parse_any_service_key(&hostile),
            Some((&b"normal\0\0\0\0\0\0\0\0"[..], 5, TraceId(1), SpanId(2)))
        );
    }

    #[test]
    fn long_names_round_trip_and_odd_keys_are_refused() {
        let long = "s".repeat(300);
        let key = operation_key(&long, "server", "GET /\0x");
        assert_eq!(
            parse_operation_key(&key),
            Some((long.as_str(), "server", "GET /\0x"))
        );
        let mut extra = key.clone();
        extra.push(0);
        assert_eq!(parse_operation_key(&extra), None);
        assert_eq!(parse_operation_key(&key[..key.len() - 1]), None);
        assert_eq!(parse_operation_key(&[0xff; 12]), None);
        assert_eq!(parse_any_service_key(&[3, b'a', b'b']), None);
        let span = span_key(TraceId(7), 8, SpanId(9));
        assert_eq!(parse_span_key(&span), Some((TraceId(7), 8, SpanId(9))));
        assert_eq!(parse_span_key(&span[1..]), None);
    }

    #[test]
    fn prefix_end_is_past_every_key_with_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
