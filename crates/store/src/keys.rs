//! The layout of the keys (store layouts 2 to 5; layout 3 changed only the values of
//! `by_service`, see `codec/summary.rs`). Every part taken from input (service, span
//! kind, operation) is written as a length (LEB128 varint) followed by its bytes, so any byte,
//! NUL included, can be in a name, and no key of one service can fall in the range of another:
//! a varint is prefix-free, so `part(a)` is a prefix of `part(b)` only when `a == b`.
//! (Layout 1 ended a service with a NUL byte, which a service name could contain; see issue 13.)
//!
//! Layout 5 stores spans in the order they arrive ([`arrival_span_key`]): a table written
//! out from memory then holds keys later than every older table's, so the engine's compaction
//! moves it down instead of merging it into the old data again and again (docs/STORE.md). A
//! trace is found through [`trace_arrival_key`], one entry per second in which spans of it
//! arrived, and a service-index entry ends with the arrival second of its span. Spans written
//! by layouts 2 to 4 stay in the trace-keyed table ([`span_key`]) until they expire: an index
//! entry without the arrival second points there ([`SpanAt::Keyed`]).
//!
//! Layout 6 indexes spans by service in ten-second slices of their start time
//! ([`slice_key`]): the slice comes first, so a table written out from memory holds the
//! slices of the last seconds and overlaps no older table, and a search reads the slices of its
//! window newest first. [`service_slice_key`] lists the slices each service has spans in.
//! Entries of `by_service` (layouts 2 to 5) are still read until they expire.
//!
//! Layout 7 files the spans of one trace that one write brings in one second as one entry of
//! `spans_by_arrival` ([`arrival_group_key`], named by a group ID): one engine entry per
//! trace and batch instead of one per span. A `by_slice` entry of such a span ends with its
//! group's ID, so a search reads the group with one point read. Single spans filed by
//! layouts 5 and 6 are read beside them.
//!
//! Parsing is strict: a key that is not exactly what this module writes is reported as not
//! decodable, never misread, and the caller skips it.

use meshtrace_model::{SpanId, TraceId};

/// Where a span is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanAt {
    /// In the trace-keyed table of layouts 2 to 4.
    Keyed,
    /// In the arrival-ordered table of layouts 5 and 6, alone, under the second it arrived
    /// (Unix seconds).
    Arrived(u32),
    /// In the arrival-ordered table of layout 7, in the group of spans of its trace that is
    /// filed under `second` with the ID `group` ([`arrival_group_key`]).
    InGroup { second: u32, group: u64 },
}

impl SpanAt {
    /// The second an arrival-ordered span is filed under; None for the trace-keyed table.
    pub fn second(self) -> Option<u32> {
        match self {
            SpanAt::Keyed => None,
            SpanAt::Arrived(second) | SpanAt::InGroup { second, .. } => Some(second),
        }
    }

    /// Writes where the span is at the end of an index key: nothing (trace-keyed), the second
    /// (4), or the second and the group ID (12).
    fn put(self, key: &mut Vec<u8>) {
        if let Some(second) = self.second() {
            key.extend_from_slice(&second.to_be_bytes());
        }
        if let SpanAt::InGroup { group, .. } = self {
            key.extend_from_slice(&group.to_be_bytes());
        }
    }

    /// Reads what [`SpanAt::put`] wrote, which must be the whole of `suffix`.
    fn parse(suffix: &[u8]) -> Option<SpanAt> {
        let Some((second, group)) = suffix.split_first_chunk::<4>() else {
            return suffix.is_empty().then_some(SpanAt::Keyed);
        };
        let second = u32::from_be_bytes(*second);
        if group.is_empty() {
            return Some(SpanAt::Arrived(second));
        }
        let group = u64::from_be_bytes(group.try_into().ok()?);
        Some(SpanAt::InGroup { second, group })
    }
}

/// Layouts 2 to 4: trace ID (16) | start µs (8, big-endian) | span ID (8)
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

/// Layout 5: arrival second (4, big-endian) | trace ID (16) | start µs (8) | span ID (8)
pub fn arrival_span_key(second: u32, trace_id: TraceId, start: u64, span_id: SpanId) -> [u8; 36] {
    let mut key = [0; 36];
    let (second_part, rest) = key.split_at_mut(4);
    second_part.copy_from_slice(&second.to_be_bytes());
    let (trace_part, rest) = rest.split_at_mut(16);
    trace_part.copy_from_slice(&trace_id.to_bytes());
    let (start_part, span_part) = rest.split_at_mut(8);
    start_part.copy_from_slice(&start.to_be_bytes());
    span_part.copy_from_slice(&span_id.to_bytes());
    key
}

/// The last byte of an [`arrival_group_key`]: the format of the group its value holds.
const GROUP_FORMAT: u8 = 1;

/// Layout 7: second filed under (4, big-endian) | trace ID (16) | group ID (8, big-endian)
/// | format (1, `1`). The value holds spans of the trace that one write filed under the second
/// (`codec/span_group.rs`). The store gives every group an ID of its own, so no two groups
/// share a key, whatever spans they bring.
pub fn arrival_group_key(second: u32, trace_id: TraceId, group: u64) -> [u8; 29] {
    let mut key = [GROUP_FORMAT; 29];
    let (second_part, rest) = key.split_at_mut(4);
    second_part.copy_from_slice(&second.to_be_bytes());
    let (trace_part, rest) = rest.split_at_mut(16);
    trace_part.copy_from_slice(&trace_id.to_bytes());
    if let Some(group_part) = rest.first_chunk_mut::<8>() {
        *group_part = group.to_be_bytes();
    }
    key
}

/// What one key of `spans_by_arrival` files, after its second and trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filed {
    /// One span (layouts 5 and 6).
    Span { start: u64, span_id: SpanId },
    /// A group of spans that one write filed (layout 7), by its ID.
    Group { id: u64 },
}

/// Reads a key written by [`arrival_span_key`] or [`arrival_group_key`]; None when it is
/// neither (a group of an unknown format included).
pub fn parse_arrival_key(key: &[u8]) -> Option<(u32, TraceId, Filed)> {
    let (second, rest) = key.split_first_chunk::<4>()?;
    let second = u32::from_be_bytes(*second);
    // A single span's key is a layout-2 span key behind its second.
    if let Some((trace_id, start, span_id)) = parse_span_key(rest) {
        return Some((second, trace_id, Filed::Span { start, span_id }));
    }
    let (trace, rest) = rest.split_first_chunk::<16>()?;
    let (id, format) = rest.split_first_chunk::<8>()?;
    if format != [GROUP_FORMAT] {
        return None;
    }
    let id = u64::from_be_bytes(*id);
    Some((
        second,
        TraceId(u128::from_be_bytes(*trace)),
        Filed::Group { id },
    ))
}

/// The range of [`arrival_span_key`]s of one trace in one second: `[from, to)`.
pub fn arrival_trace_range(second: u32, trace_id: TraceId) -> (Vec<u8>, Vec<u8>) {
    let mut from = Vec::with_capacity(20);
    from.extend_from_slice(&second.to_be_bytes());
    from.extend_from_slice(&trace_id.to_bytes());
    let to = prefix_end(&from).unwrap_or_else(|| vec![0xff; 21]);
    (from, to)
}

/// `trace_arrivals`: trace ID (16) | arrival second (4, big-endian), with an empty value.
pub fn trace_arrival_key(trace_id: TraceId, second: u32) -> [u8; 20] {
    let mut key = [0; 20];
    let (trace_part, second_part) = key.split_at_mut(16);
    trace_part.copy_from_slice(&trace_id.to_bytes());
    second_part.copy_from_slice(&second.to_be_bytes());
    key
}

/// Reads a key written by [`trace_arrival_key`]; None when it is not one.
pub fn parse_trace_arrival_key(key: &[u8]) -> Option<(TraceId, u32)> {
    let (trace, rest) = key.split_first_chunk::<16>()?;
    let second: [u8; 4] = rest.try_into().ok()?;
    Some((
        TraceId(u128::from_be_bytes(*trace)),
        u32::from_be_bytes(second),
    ))
}

/// The range of keys that start with the 16 bytes of `trace_id`: `[from, to)`.
pub fn trace_range(trace_id: TraceId) -> (Vec<u8>, Vec<u8>) {
    let from = trace_id.to_bytes().to_vec();
    let to = prefix_end(&from).unwrap_or_else(|| vec![0xff; 17]);
    (from, to)
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

/// `by_service`: part(service) | start µs (8) | trace ID (16) | span ID (8) | arrival second
/// (4; layout 5 only: an entry without it is of a span in the trace-keyed table)
pub fn service_key(
    service: &str,
    start: u64,
    trace_id: TraceId,
    span_id: SpanId,
    at: SpanAt,
) -> Vec<u8> {
    let mut key = service_prefix(service);
    key.extend_from_slice(&start.to_be_bytes());
    key.extend_from_slice(&trace_id.to_bytes());
    key.extend_from_slice(&span_id.to_bytes());
    at.put(&mut key);
    key
}

/// What a `by_service` key says after its service: the span's start, trace, ID and where it is.
pub type ServiceEntry = (u64, TraceId, SpanId, SpanAt);

/// The entry of a `by_service` key that starts with `prefix`; None when the key is not one
/// written by [`service_key`] for that prefix.
pub fn parse_service_key(prefix: &[u8], key: &[u8]) -> Option<ServiceEntry> {
    parse_service_suffix(key.strip_prefix(prefix)?)
}

fn parse_service_suffix(suffix: &[u8]) -> Option<ServiceEntry> {
    let (start, rest) = suffix.split_first_chunk::<8>()?;
    let (trace, rest) = rest.split_first_chunk::<16>()?;
    let (span, rest) = rest.split_first_chunk::<8>()?;
    let at = SpanAt::parse(rest)?;
    Some((
        u64::from_be_bytes(*start),
        TraceId(u128::from_be_bytes(*trace)),
        SpanId(u64::from_be_bytes(*span)),
        at,
    ))
}

/// The service and entry of any `by_service` key (for the data check).
pub fn parse_any_service_key(key: &[u8]) -> Option<(&[u8], ServiceEntry)> {
    let (service, rest) = take_part(key)?;
    Some((service, parse_service_suffix(rest)?))
}

/// The width of a slice of `by_slice`, in µs of start time.
pub const SLICE_MICROS: u64 = 10_000_000;

/// The slice a span starting at `start` (µs) is indexed in. A start past the last slice a
/// u32 can name (year 3331) shares that one: the order of slices stays the order of starts.
pub fn slice_of(start: u64) -> u32 {
    u32::try_from(start / SLICE_MICROS).unwrap_or(u32::MAX)
}

/// The prefix of the `by_slice` keys of `service` in `slice`: slice (4) | part(service).
pub fn slice_prefix(slice: u32, service: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(service.len().saturating_add(44));
    put_slice_prefix(&mut key, slice, service);
    key
}

fn put_slice_prefix(key: &mut Vec<u8>, slice: u32, service: &str) {
    key.extend_from_slice(&slice.to_be_bytes());
    put_part(key, service.as_bytes());
}

/// `by_slice` (layout 6): slice of the start (4) | part(service) | start µs (8) | trace ID
/// (16) | span ID (8) | arrival second (4) | group ID (8; layout 7, whose spans are in
/// groups: [`SpanAt::InGroup`])
pub fn slice_key(
    service: &str,
    start: u64,
    trace_id: TraceId,
    span_id: SpanId,
    at: SpanAt,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(service.len().saturating_add(52));
    put_slice_key(&mut key, service, start, trace_id, span_id, at);
    key
}

/// [`slice_key`], written at the end of `key`.
pub fn put_slice_key(
    key: &mut Vec<u8>,
    service: &str,
    start: u64,
    trace_id: TraceId,
    span_id: SpanId,
    at: SpanAt,
) {
    put_slice_prefix(key, slice_of(start), service);
    key.extend_from_slice(&start.to_be_bytes());
    key.extend_from_slice(&trace_id.to_bytes());
    key.extend_from_slice(&span_id.to_bytes());
    at.put(key);
}

/// The entry of a `by_slice` key that starts with `prefix` (from [`slice_prefix`] of `slice`);
/// None when the key is not one written by [`slice_key`] in that slice.
pub fn parse_slice_key(slice: u32, prefix: &[u8], key: &[u8]) -> Option<ServiceEntry> {
    slice_entry(slice, key.strip_prefix(prefix)?)
}

/// The slice, service and entry of any `by_slice` key (for the data check).
pub fn parse_any_slice_key(key: &[u8]) -> Option<(u32, &[u8], ServiceEntry)> {
    let (slice, rest) = key.split_first_chunk::<4>()?;
    let slice = u32::from_be_bytes(*slice);
    let (service, rest) = take_part(rest)?;
    Some((slice, service, slice_entry(slice, rest)?))
}

/// The entry `suffix` (what follows the service in a `by_slice` key) spells, when it is one of
/// `slice`: its span is in the arrival-ordered table and starts in the slice.
fn slice_entry(slice: u32, suffix: &[u8]) -> Option<ServiceEntry> {
    let entry = parse_service_suffix(suffix)?;
    let (start, _, _, at) = entry;
    (at.second().is_some() && slice_of(start) == slice).then_some(entry)
}

/// `service_slices` (layout 6): part(service) | slice (4), with an empty value: the slices of
/// `by_slice` that hold entries of the service.
pub fn service_slice_key(service: &str, slice: u32) -> Vec<u8> {
    let mut key = service_prefix(service);
    key.extend_from_slice(&slice.to_be_bytes());
    key
}

/// The range of `service_slices` keys of `service` listing slices `first` to `last`:
/// `[from, to)`.
pub fn service_slices_range(service: &str, first: u32, last: u32) -> (Vec<u8>, Vec<u8>) {
    let to = match last.checked_add(1) {
        Some(next) => service_slice_key(service, next),
        None => {
            let prefix = service_prefix(service);
            prefix_end(&prefix).unwrap_or_else(|| vec![0xff; prefix.len().saturating_add(5)])
        }
    };
    (service_slice_key(service, first), to)
}

/// The slice of a `service_slices` key that starts with `prefix` (a [`service_prefix`]).
pub fn parse_service_slice_key(prefix: &[u8], key: &[u8]) -> Option<u32> {
    let slice: [u8; 4] = key.strip_prefix(prefix)?.try_into().ok()?;
    Some(u32::from_be_bytes(slice))
}

/// The service and slice of any `service_slices` key (for the data check).
pub fn parse_any_service_slice_key(key: &[u8]) -> Option<(&[u8], u32)> {
    let (service, rest) = take_part(key)?;
    let slice: [u8; 4] = rest.try_into().ok()?;
    Some((service, u32::from_be_bytes(slice)))
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
        let hostile = service_key(
            "normal\0\0\0\0\0\0\0\0",
            5,
            TraceId(1),
            SpanId(2),
            SpanAt::Keyed,
        );
        assert!(!hostile.starts_with(&normal));
        assert_eq!(parse_service_key(&normal, &hostile), None);
        let own = service_prefix("normal\0\0\0\0\0\0\0\0");
        assert_eq!(
            parse_service_key(&own, &hostile),
            Some((5, TraceId(1), SpanId(2), SpanAt::Keyed))
        );
        assert_eq!(
            parse_any_service_key(&hostile),
            Some((
                &b"normal\0\0\0\0\0\0\0\0"[..],
                (5, TraceId(1), SpanId(2), SpanAt::Keyed)
            ))
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
    fn arrival_keys_round_trip_and_order_by_arrival_first() {
        let key = arrival_span_key(1_700_000_000, TraceId(7), 8, SpanId(9));
        let span = Filed::Span {
            start: 8,
            span_id: SpanId(9),
        };
        assert_eq!(
            parse_arrival_key(&key),
            Some((1_700_000_000, TraceId(7), span))
        );
        assert_eq!(parse_arrival_key(&key[1..]), None);
        let group = arrival_group_key(1_700_000_000, TraceId(7), u64::MAX - 1);
        let filed = Filed::Group { id: u64::MAX - 1 };
        assert_eq!(
            parse_arrival_key(&group),
            Some((1_700_000_000, TraceId(7), filed))
        );
        // A group of a format this build does not know is not misread as one it knows.
        let mut unknown = group;
        unknown[28] = 2;
        assert_eq!(parse_arrival_key(&unknown), None);
        assert_eq!(parse_arrival_key(&group[..28]), None);
        // A later second sorts after every key of an earlier one, whatever the trace.
        let later = arrival_span_key(1_700_000_001, TraceId(0), 0, SpanId(0));
        let earlier = arrival_span_key(1_700_000_000, TraceId(u128::MAX), u64::MAX, SpanId(1));
        assert!(earlier < later);
        let (from, to) = arrival_trace_range(1_700_000_000, TraceId(7));
        assert!(from.as_slice() <= key.as_slice() && key.as_slice() < to.as_slice());
        assert!(from.as_slice() <= group.as_slice() && group.as_slice() < to.as_slice());
        let arrival = trace_arrival_key(TraceId(7), 12);
        assert_eq!(parse_trace_arrival_key(&arrival), Some((TraceId(7), 12)));
        assert_eq!(parse_trace_arrival_key(&arrival[..19]), None);
        // An index entry says where its span is by its length; any other length is refused.
        let prefix = service_prefix("s");
        let arrived = service_key("s", 5, TraceId(1), SpanId(2), SpanAt::Arrived(12));
        assert_eq!(
            parse_service_key(&prefix, &arrived),
            Some((5, TraceId(1), SpanId(2), SpanAt::Arrived(12)))
        );
        assert_eq!(
            parse_service_key(&prefix, &arrived[..arrived.len() - 1]),
            None
        );
        let mut longer = arrived.clone();
        longer.push(0);
        assert_eq!(parse_service_key(&prefix, &longer), None);
        let in_group = SpanAt::InGroup {
            second: 12,
            group: 77,
        };
        let grouped = service_key("s", 5, TraceId(1), SpanId(2), in_group);
        assert_eq!(grouped.len(), arrived.len() + 8);
        assert_eq!(
            parse_service_key(&prefix, &grouped),
            Some((5, TraceId(1), SpanId(2), in_group))
        );
        assert_eq!(in_group.second(), Some(12));
        assert_eq!(SpanAt::Keyed.second(), None);
    }

    #[test]
    fn slice_keys_order_by_slice_first_and_hold_their_start() {
        let start = 1_700_000_005_000_000;
        let at = SpanAt::InGroup {
            second: 1_700_000_009,
            group: 3,
        };
        let key = slice_key("s", start, TraceId(1), SpanId(2), at);
        let slice = slice_of(start);
        assert_eq!(slice, 170_000_000);
        let prefix = slice_prefix(slice, "s");
        let entry = (start, TraceId(1), SpanId(2), at);
        assert_eq!(parse_slice_key(slice, &prefix, &key), Some(entry));
        assert_eq!(parse_any_slice_key(&key), Some((slice, &b"s"[..], entry)));
        // Layout 6's entries, of spans filed alone, read as such.
        let alone = slice_key("s", start, TraceId(1), SpanId(2), SpanAt::Arrived(9));
        let entry_alone = (start, TraceId(1), SpanId(2), SpanAt::Arrived(9));
        assert_eq!(parse_slice_key(slice, &prefix, &alone), Some(entry_alone));
        // A key whose start is outside its slice, or without the second, is not one we write.
        let mut moved = slice_prefix(slice + 1, "s");
        moved.extend_from_slice(&key[prefix.len()..]);
        assert_eq!(parse_any_slice_key(&moved), None);
        assert_eq!(
            parse_slice_key(slice, &prefix, &key[..key.len() - 12]),
            None
        );
        assert_eq!(parse_slice_key(slice, &prefix, &key[..key.len() - 1]), None);
        // Every key of a later slice sorts after every key of an earlier one.
        let last = SpanAt::InGroup {
            second: u32::MAX,
            group: u64::MAX,
        };
        let earlier = slice_key("zzz", start, TraceId(u128::MAX), SpanId(9), last);
        let first = SpanAt::InGroup {
            second: 0,
            group: 0,
        };
        let later = slice_key("a", start + SLICE_MICROS, TraceId(0), SpanId(0), first);
        assert!(earlier < later);
        assert_eq!(slice_of(u64::MAX), u32::MAX);
        let listed = service_slice_key("s", slice);
        assert_eq!(
            parse_service_slice_key(&service_prefix("s"), &listed),
            Some(slice)
        );
        assert_eq!(
            parse_any_service_slice_key(&listed),
            Some((&b"s"[..], slice))
        );
        assert_eq!(parse_any_service_slice_key(&listed[..5]), None);
    }

    #[test]
    fn prefix_end_is_past_every_key_with_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
