//! Span groups (layout 7): the spans of one trace that one write files under one second, stored
//! as one value of `spans_by_arrival` (`keys::arrival_group_key`). One engine entry per trace
//! and write instead of one per span: the engine's memtable insertion and its journal's and
//! tables' per-entry overhead are paid once for all of them.
//!
//! A group is its first span's start (varint), then its spans one after the other, each: its
//! start as the difference from the first's (zigzag varint), its span ID (8 bytes,
//! big-endian), and its encoded form ([`super::encode_span`]), length-prefixed. Reading never
//! trusts the bytes: a member that does not decode ends the group with an error.

use meshtrace_model::SpanId;

use super::CorruptError;
use super::reader::{Reader, put_bytes, put_varint, unzigzag, zigzag};

/// A group being written: its bytes, and the start its members' are relative to.
pub struct SpanGroup {
    base: u64,
    bytes: Vec<u8>,
}

impl SpanGroup {
    /// A group whose first span starts at `start`, with room for `capacity` bytes.
    pub fn new(start: u64, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(capacity);
        put_varint(&mut bytes, start);
        SpanGroup { base: start, bytes }
    }

    /// Appends one span.
    pub fn push(&mut self, start: u64, span_id: SpanId, encoded: &[u8]) {
        put_varint(
            &mut self.bytes,
            zigzag(start.wrapping_sub(self.base) as i64),
        );
        self.bytes.extend_from_slice(&span_id.to_bytes());
        put_bytes(&mut self.bytes, encoded);
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The members of a stored group, in the order written: (start, span ID, encoded span).
pub fn group_members(value: &[u8]) -> GroupMembers<'_> {
    GroupMembers {
        reader: Reader::new(value),
        base: None,
        failed: false,
    }
}

/// The group without the spans `removed` names (start, span ID): None when it holds none of
/// them, else the rest, or an empty value when nothing is left.
pub fn group_without(
    value: &[u8],
    removed: &[(u64, SpanId)],
) -> Result<Option<Vec<u8>>, CorruptError> {
    let mut rest: Option<SpanGroup> = None;
    let mut any_removed = false;
    for member in group_members(value) {
        let (start, span_id, encoded) = member?;
        if removed.contains(&(start, span_id)) {
            any_removed = true;
        } else {
            rest.get_or_insert_with(|| SpanGroup::new(start, value.len()))
                .push(start, span_id, encoded);
        }
    }
    Ok(any_removed.then(|| rest.map(SpanGroup::into_bytes).unwrap_or_default()))
}

pub struct GroupMembers<'a> {
    reader: Reader<'a>,
    /// The first span's start, once read.
    base: Option<u64>,
    failed: bool,
}

impl<'a> GroupMembers<'a> {
    fn member(&mut self) -> Result<(u64, SpanId, &'a [u8]), CorruptError> {
        let base = match self.base {
            Some(base) => base,
            None => *self.base.insert(self.reader.varint()?),
        };
        let start = base.wrapping_add(unzigzag(self.reader.varint()?) as u64);
        let span_id = SpanId(u64::from_be_bytes(self.reader.array::<8>()?));
        let length = self.reader.count()?;
        Ok((start, span_id, self.reader.take(length)?))
    }
}

impl<'a> Iterator for GroupMembers<'a> {
    type Item = Result<(u64, SpanId, &'a [u8]), CorruptError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || (self.base.is_some() && self.reader.is_empty()) {
            return None;
        }
        let member = self.member();
        self.failed = member.is_err();
        Some(member)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn group_of(members: &[(u64, SpanId, &[u8])]) -> Vec<u8> {
        let mut group = SpanGroup::new(members[0].0, 64);
        for &(start, span, encoded) in members {
            group.push(start, span, encoded);
        }
        group.into_bytes()
    }

    #[test]
    fn members_read_back_in_order_with_starts_before_and_after_the_first() {
        let first = 1_767_225_600_000_000;
        let members: [(u64, SpanId, &[u8]); 3] = [
            (first, SpanId(1), b"first"),
            (first - 5, SpanId(u64::MAX), b""),
            (first + 9_000_000, SpanId(3), &[0xff; 300]),
        ];
        let group = group_of(&members);
        let read: Vec<_> = group_members(&group).collect::<Result<_, _>>().unwrap();
        assert_eq!(read, members);
    }

    #[test]
    fn a_cut_group_reads_its_whole_members_then_an_error() {
        let one = group_of(&[(10, SpanId(1), b"one")]);
        let group = group_of(&[(10, SpanId(1), b"one"), (12, SpanId(2), b"two")]);
        for cut in one.len() + 1..group.len() {
            let read: Vec<_> = group_members(&group[..cut]).collect();
            assert_eq!(read.len(), 2, "cut at {cut}");
            assert!(read[0].is_ok() && read[1].is_err(), "cut at {cut}");
        }
        // Nothing, or a start without a span: damaged, never an empty group.
        assert!(group_members(&[]).next().unwrap().is_err());
        assert!(group_members(&group[..1]).next().unwrap().is_err());
    }

    #[test]
    fn a_group_without_some_members_keeps_the_others_in_order() {
        let group = group_of(&[
            (10, SpanId(1), b"a"),
            (8, SpanId(2), b"b"),
            (12, SpanId(3), b"c"),
        ]);
        let rest = group_without(&group, &[(10, SpanId(1))]).unwrap().unwrap();
        let read: Vec<_> = group_members(&rest).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            read,
            [(8, SpanId(2), &b"b"[..]), (12, SpanId(3), &b"c"[..])]
        );
        // A span of another start is another span.
        assert_eq!(group_without(&group, &[(9, SpanId(2))]).unwrap(), None);
        let all = [(10, SpanId(1)), (8, SpanId(2)), (12, SpanId(3))];
        assert_eq!(group_without(&group, &all).unwrap(), Some(Vec::new()));
        assert!(group_without(&group[..group.len() - 1], &all).is_err());
    }

    proptest! {
        /// Any bytes read as a group give members and at most one error, never a panic, and
        /// never more members than bytes.
        #[test]
        fn any_bytes_read_as_a_group_end(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let read: Vec<_> = group_members(&bytes).collect();
            prop_assert!(read.len() <= bytes.len().max(1));
            prop_assert!(read.iter().rev().skip(1).all(Result::is_ok));
        }
    }
}
