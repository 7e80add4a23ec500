//! Reading a trace by ID: its spans in the arrival-ordered table (filed one by one by layouts 5
//! and 6, in groups by layout 7), found through the seconds `trace_arrivals` lists for it, and
//! those still in the trace-keyed table of layouts 2 to 4; the processes the spans refer to;
//! and the one span an index entry points to.

use std::collections::BTreeMap;
use std::sync::Arc;

use meshtrace_model::{Process, Span, SpanId, Trace, TraceId};

use super::{Store, lock};
use crate::StoreError;
use crate::codec;
use crate::damage::DamageKind;
use crate::keys::{
    Filed, ServiceEntry, SpanAt, arrival_group_key, arrival_span_key, arrival_trace_range,
    parse_arrival_key, parse_span_key, parse_trace_arrival_key, span_key, trace_range,
};
use crate::kv::{Kv, Table};

/// The encoded spans of one trace by (start, span ID): a span written twice (a client that
/// retried a batch a second later) is kept once, as it arrived last.
type Found = BTreeMap<(u64, SpanId), Vec<u8>>;

impl Store {
    pub fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StoreError> {
        let mut found = Found::new();
        let mut unreadable = 0usize;
        let (from, to) = trace_range(trace_id);
        self.collect_keyed((&from, &to), &mut found, &mut unreadable)?;
        for second in self.arrival_seconds(trace_id)? {
            let (from, to) = arrival_trace_range(second, trace_id);
            self.kv
                .scan(Table::SpansByArrival, &from, &to, false, &mut |k, v| {
                    self.collect_filed(k, v, &mut found, &mut unreadable);
                    Ok(true)
                })?;
        }
        if found.is_empty() && unreadable == 0 {
            return Ok(None);
        }
        let mut spans = Vec::with_capacity(found.len());
        for ((start, span_id), value) in &found {
            match self.decode_span(trace_id, *start, *span_id, value)? {
                Some(span) => spans.push(span),
                None => unreadable = unreadable.saturating_add(1),
            }
        }
        let mut warnings = Vec::new();
        if unreadable > 0 {
            warnings.push(format!(
                "meshtrace: {unreadable} span(s) of this trace are damaged in the store and left out"
            ));
        }
        if spans.is_empty() {
            return Ok(None);
        }
        Ok(Some(Trace { spans, warnings }))
    }

    /// The seconds in which spans of `trace_id` arrived, oldest first.
    pub(super) fn arrival_seconds(&self, trace_id: TraceId) -> Result<Vec<u32>, StoreError> {
        let (from, to) = trace_range(trace_id);
        let mut seconds = Vec::new();
        self.kv
            .scan(Table::TraceArrivals, &from, &to, false, &mut |k, _| {
                match parse_trace_arrival_key(k) {
                    Some((_, second)) => seconds.push(second),
                    None => self.damage.record(
                        DamageKind::UndecodableKey,
                        "trace_arrivals",
                        &"a key is not 20 bytes",
                    ),
                }
                Ok(true)
            })?;
        Ok(seconds)
    }

    /// Adds the spans of the trace-keyed table (layouts 2 to 4) in `[from, to)` to `found`; a
    /// key that does not decode is counted in `unreadable`.
    fn collect_keyed(
        &self,
        (from, to): (&[u8], &[u8]),
        found: &mut Found,
        unreadable: &mut usize,
    ) -> Result<(), StoreError> {
        self.kv.scan(Table::Spans, from, to, false, &mut |k, v| {
            match parse_span_key(k) {
                Some((_, start, span)) => {
                    found.insert((start, span), v.to_vec());
                }
                None => self.unreadable_key(Table::Spans, unreadable),
            }
            Ok(true)
        })
    }

    /// Adds what one entry of `spans_by_arrival` files to `found`: its span (layouts 5 and 6)
    /// or the spans of its group (layout 7). What does not decode is counted in `unreadable`.
    fn collect_filed(&self, key: &[u8], value: &[u8], found: &mut Found, unreadable: &mut usize) {
        match parse_arrival_key(key) {
            Some((_, _, Filed::Span { start, span_id })) => {
                found.insert((start, span_id), value.to_vec());
            }
            Some((_, _, Filed::Group { .. })) => {
                for member in codec::group_members(value) {
                    match member {
                        Ok((start, span_id, encoded)) => {
                            found.insert((start, span_id), encoded.to_vec());
                        }
                        Err(error) => {
                            self.damage.record(
                                DamageKind::UndecodableValue,
                                Table::SpansByArrival.name(),
                                &error,
                            );
                            *unreadable = unreadable.saturating_add(1);
                        }
                    }
                }
            }
            None => self.unreadable_key(Table::SpansByArrival, unreadable),
        }
    }

    fn unreadable_key(&self, table: Table, unreadable: &mut usize) {
        self.damage.record(
            DamageKind::UndecodableKey,
            table.name(),
            &"a key of the wrong length",
        );
        *unreadable = unreadable.saturating_add(1);
    }

    /// A stored span, or None (counted) when its value is damaged.
    pub(super) fn decode_span(
        &self,
        trace_id: TraceId,
        start: u64,
        span_id: SpanId,
        value: &[u8],
    ) -> Result<Option<Span>, StoreError> {
        let (process, process_lost) = match codec::span_process_hash(value) {
            Ok(hash) => self.process(hash)?,
            Err(error) => {
                self.damage
                    .record(DamageKind::UndecodableValue, "spans", &error);
                return Ok(None);
            }
        };
        match codec::decode_span(trace_id, start, span_id, value, process, &self.dict) {
            Ok((mut span, lost)) => {
                if lost > 0 {
                    self.damage.record(
                        DamageKind::MissingDictionaryEntry,
                        "dictionary",
                        &format_args!("trace {trace_id}: {lost} string(s) lost"),
                    );
                }
                if process_lost {
                    span.warnings.push(
                        "meshtrace: the process of this span was lost from the store (damaged journal?)"
                            .to_string(),
                    );
                }
                Ok(Some(span))
            }
            Err(error) => {
                self.damage
                    .record(DamageKind::UndecodableValue, "spans", &error);
                Ok(None)
            }
        }
    }

    /// The process stored under `hash`; or a placeholder (not cached, counted, and `true`)
    /// when it is missing or damaged.
    pub(super) fn process(&self, hash: u64) -> Result<(Arc<Process>, bool), StoreError> {
        if let Some(p) = lock(&self.process_cache).get(&hash) {
            return Ok((p.clone(), false));
        }
        let decoded = match self.kv.get(Table::Processes, &hash.to_be_bytes())? {
            Some(value) => codec::decode_process(&value).map_err(|e| {
                self.damage
                    .record(DamageKind::UndecodableValue, "processes", &e);
            }),
            None => {
                self.damage.record(
                    DamageKind::MissingProcess,
                    "processes",
                    &format_args!("process {hash:016x} is not stored"),
                );
                Err(())
            }
        };
        let Ok(process) = decoded else {
            return Ok((Arc::new(placeholder_process(hash)), true));
        };
        let process = Arc::new(process);
        lock(&self.process_cache).insert(hash, process.clone());
        Ok((process, false))
    }
}

/// The process a span whose process is lost is served with: named so it is obvious.
fn placeholder_process(hash: u64) -> Process {
    Process {
        service_name: format!("<lost process {hash:016x}>"),
        tags: Vec::new(),
    }
}

/// The encoded span an index entry points to, wherever its layout filed it (one point read):
/// the trace-keyed table, its own entry of the arrival-ordered one, or its group there. None
/// when it is not stored (or its group does not decode that far).
pub(crate) fn stored_span(
    kv: &dyn Kv,
    (start, trace_id, span_id, at): ServiceEntry,
) -> Result<Option<Vec<u8>>, StoreError> {
    match at {
        SpanAt::Keyed => kv.get(Table::Spans, &span_key(trace_id, start, span_id)),
        SpanAt::Arrived(second) => kv.get(
            Table::SpansByArrival,
            &arrival_span_key(second, trace_id, start, span_id),
        ),
        SpanAt::InGroup { second, group } => {
            let key = arrival_group_key(second, trace_id, group);
            let Some(group) = kv.get(Table::SpansByArrival, &key)? else {
                return Ok(None);
            };
            let member = codec::group_members(&group).map_while(Result::ok).find(
                |&(member_start, member_id, _)| (member_start, member_id) == (start, span_id),
            );
            Ok(member.map(|(_, _, encoded)| encoded.to_vec()))
        }
    }
}
