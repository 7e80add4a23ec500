//! Store layout 4: a `by_service` entry covers the spans of one service in one trace that a
//! write batch brought (a *group*), instead of one span. The key is that of layouts 2–3 —
//! part(service) | start | trace ID | 8 bytes — with the group's earliest start, and:
//!
//! - a group of one span is written exactly as in layout 3: the 8 bytes are its span ID and
//!   the value its summary (`summary.rs`), so every entry of a layout-2 or layout-3 directory
//!   reads as a group of one;
//! - a larger group's 8 bytes are a hash of its members (so a batch sent again overwrites its
//!   own entry, and another batch of the same trace never overwrites it), and its value is
//!   [`GROUP`], the member count, then per member: start minus the key's start (varint), span
//!   ID (8), and its summary with its length.
//!
//! The members of a group start at most [`GROUP_WIDTH`] after the key's start, so a search of a
//! time range reads the entries from that much before it, and knows when no entry it has not
//! read can hold a span newer than those it found.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use meshtrace_model::SpanId;

use super::reader::{Reader, put_varint};
use super::summary::{Summary, decode_summary};
use super::{CorruptError, process_hash};

/// The first byte of a group entry's value: neither of the two a summary starts with.
pub const GROUP: u8 = 0x47;
/// How far after the group's first span its last one may start, in µs.
pub const GROUP_WIDTH: u64 = 1_000_000;
/// The most spans one entry covers (a longer run of one service's spans is cut).
pub const GROUP_MAX_SPANS: usize = 64;

/// One span of a group, as written.
pub struct GroupMember {
    pub start: u64,
    pub span_id: SpanId,
    /// Its encoded summary.
    pub summary: Vec<u8>,
}

/// The 8 bytes that end the key of a group of several spans: a hash of its members.
pub fn group_id(members: &[GroupMember]) -> SpanId {
    let mut bytes = Vec::with_capacity(members.len().saturating_mul(16));
    for m in members {
        bytes.extend_from_slice(&m.start.to_be_bytes());
        bytes.extend_from_slice(&m.span_id.to_bytes());
    }
    SpanId(process_hash(&bytes))
}

/// The value of the entry of `members` (at least two, none before `key_start`).
pub fn encode_group(key_start: u64, members: &[GroupMember], out: &mut Vec<u8>) {
    out.push(GROUP);
    put_varint(out, members.len() as u64);
    for m in members {
        put_varint(out, m.start.saturating_sub(key_start));
        out.extend_from_slice(&m.span_id.to_bytes());
        put_varint(out, m.summary.len() as u64);
        out.extend_from_slice(&m.summary);
    }
}

/// One span an entry covers, as read.
pub struct Member<'a> {
    pub start: u64,
    pub span_id: SpanId,
    pub summary: Summary<'a>,
    /// The summary's bytes (to write the member again).
    pub raw: &'a [u8],
}

/// Whether an entry's value is that of a group (its key ends with a group ID, not a span ID).
pub fn is_group(value: &[u8]) -> bool {
    value.first() == Some(&GROUP)
}

/// The spans an entry covers: `key_start` and `key_id` are what its key holds.
pub fn decode_entry(
    key_start: u64,
    key_id: SpanId,
    value: &[u8],
) -> Result<Vec<Member<'_>>, CorruptError> {
    if !is_group(value) {
        return Ok(vec![Member {
            start: key_start,
            span_id: key_id,
            summary: decode_summary(value)?,
            raw: value,
        }]);
    }
    let mut r = Reader::new(value.get(1..).unwrap_or_default());
    let count = r.count()?;
    let mut members = Vec::with_capacity(count.min(GROUP_MAX_SPANS));
    for _ in 0..count {
        let start = key_start
            .checked_add(r.varint()?)
            .ok_or(CorruptError("a group member's start overflows"))?;
        let span_id = SpanId(u64::from_be_bytes(r.array::<8>()?));
        let len = r.count()?;
        let raw = r.take(len)?;
        members.push(Member {
            start,
            span_id,
            summary: decode_summary(raw)?,
            raw,
        });
    }
    if !r.is_empty() {
        return Err(CorruptError("bytes after a group entry"));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(start: u64, id: u64, summary: &[u8]) -> GroupMember {
        GroupMember {
            start,
            span_id: SpanId(id),
            summary: summary.to_vec(),
        }
    }

    #[test]
    fn groups_round_trip_and_damage_is_an_error() {
        // Summaries: an inline operation "a" / "bc" and a duration.
        let members = [
            member(100, 7, &[0, 1, b'a', 5]),
            member(350, 9, &[0, 2, b'b', b'c', 200, 1]),
        ];
        let mut value = Vec::new();
        encode_group(100, &members, &mut value);
        assert!(is_group(&value));
        let read = decode_entry(100, SpanId(1), &value).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(
            (read[0].start, read[0].span_id, read[0].summary.duration),
            (100, SpanId(7), 5)
        );
        assert_eq!(
            (read[1].start, read[1].span_id, read[1].summary.duration),
            (350, SpanId(9), 200)
        );
        assert_eq!(read[1].raw, &[0, 2, b'b', b'c', 200, 1]);
        for cut in 1..value.len() {
            assert!(
                decode_entry(100, SpanId(1), &value[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut extra = value.clone();
        extra.push(0);
        assert!(decode_entry(100, SpanId(1), &extra).is_err());
        // A start past u64::MAX is refused, not wrapped.
        assert!(decode_entry(u64::MAX, SpanId(1), &value).is_err());
        // A huge count with nothing behind it is an error, not an allocation.
        assert!(decode_entry(0, SpanId(1), &[GROUP, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn an_entry_of_one_span_reads_as_in_layout_3() {
        let read = decode_entry(42, SpanId(5), &[0, 1, b'a', 9]).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(
            (read[0].start, read[0].span_id, read[0].summary.duration),
            (42, SpanId(5), 9)
        );
        let a = [member(1, 2, &[]), member(3, 4, &[])];
        let b = [member(1, 2, &[]), member(3, 5, &[])];
        assert_ne!(group_id(&a), group_id(&b));
        assert_eq!(
            group_id(&a),
            group_id(&[member(1, 2, &[9]), member(3, 4, &[])])
        );
    }
}
