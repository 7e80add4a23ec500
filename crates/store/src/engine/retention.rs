//! The retention pass: removes the spans that started before a cutoff with their index
//! entries, and the services and operations last seen before it. An index entry that does not
//! decode is removed too (it points nowhere) and counted; it never stops the pass, so expired
//! data keeps being removed whatever one key holds.
//!
//! The service index is read per service: its slices of `by_slice` that start before the
//! cutoff (`service_slices` lists them; a slice emptied is unlisted), then its entries of
//! `by_service` (layouts 2 to 5).
//!
//! A span of layout 5 is filed under a second no earlier than its start (`engine/mod.rs`), so
//! every span filed before the cutoff's second has expired: those are removed in arrival order
//! with their trace's entries in `trace_arrivals`, which needs no check of what else the trace
//! holds. The service index removes the rest: spans that arrived after they had expired, and
//! those of the trace-keyed table of layouts 2 to 4.

use std::collections::{HashMap, HashSet};

use meshtrace_model::{SpanId, TraceId};

use super::{Store, arrival_second, last_seen};
use crate::StoreError;
use crate::codec;
use crate::damage::DamageKind;
use crate::keys::{
    ServiceEntry, SpanAt, arrival_group_key, arrival_span_key, arrival_trace_range,
    parse_arrival_key, parse_service_key, parse_service_slice_key, parse_slice_key, prefix_end,
    service_prefix, service_slice_key, service_slices_range, slice_of, slice_prefix, span_key,
    trace_arrival_key,
};
use crate::kv::{Op, Table};

/// Index entries removed per write.
const CHUNK: usize = 512;

impl Store {
    /// Removes every span that started before `cutoff` (µs), with its index entries, and the
    /// services and operations not seen since. Returns how many spans were removed. Each pass is
    /// counted and timed (`/metrics`).
    pub fn purge_before(&self, cutoff: u64) -> Result<usize, StoreError> {
        let started = std::time::Instant::now();
        let result = self.purge_expired(cutoff);
        self.stats
            .retention_pass(started.elapsed(), result.as_ref().ok().copied());
        result
    }

    fn purge_expired(&self, cutoff: u64) -> Result<usize, StoreError> {
        let mut removed: usize = 0;
        let mut services: Vec<(Vec<u8>, u64)> = Vec::new();
        self.kv
            .scan(Table::Services, &[], &[0xff], false, &mut |k, v| {
                services.push((k.to_vec(), last_seen(v)));
                Ok(true)
            })?;
        for (name, seen) in services {
            let Ok(service) = std::str::from_utf8(&name) else {
                // Not a name any span could have: remove it.
                self.damage.record(
                    DamageKind::UndecodableKey,
                    "services",
                    &"a service name is not UTF-8",
                );
                self.kv.write(vec![Op::delete(Table::Services, name)])?;
                continue;
            };
            removed = removed.saturating_add(self.purge_service(service, cutoff)?);
            self.purge_operations(service, cutoff)?;
            // A batch of this service written meanwhile puts its entry back with a later time;
            // if this delete lands after it, the service is listed again with its next span.
            // The entry holds the latest start of the last batch, not of all: a service whose
            // earlier span claims a later start (a clock ahead) keeps its entry until that
            // span's index entry is gone, so that a later pass still visits it.
            if seen < cutoff && !self.has_index_entries(service)? {
                self.kv.write(vec![Op::delete(Table::Services, name)])?;
            }
        }
        self.purge_arrived_before(arrival_second(cutoff))?;
        if let Some(derive) = &self.derive {
            let cells =
                derive.purge_before(&*self.kv, &self.damage, &self.writer, cutoff / 1000)?;
            if cells > 0 {
                tracing::debug!(cells, "expired metric buckets removed");
            }
        }
        Ok(removed)
    }

    /// Removes the index entries of `service` that started before `cutoff`, in `by_slice` and
    /// in `by_service`, with the spans that arrived after they had expired; returns how many.
    fn purge_service(&self, service: &str, cutoff: u64) -> Result<usize, StoreError> {
        let mut removed: usize = 0;
        let prefix = service_prefix(service);
        // From the service's prefix: a damaged key shorter than a slice is found and removed.
        let (_, listed_to) = service_slices_range(service, 0, slice_of(cutoff));
        let mut slices = Vec::new();
        let mut undecodable = Vec::new();
        self.kv.scan(
            Table::ServiceSlices,
            &prefix,
            &listed_to,
            false,
            &mut |key, _| {
                match parse_service_slice_key(&prefix, key) {
                    Some(slice) => slices.push(slice),
                    None => {
                        self.damage.record(
                            DamageKind::UndecodableKey,
                            "service_slices",
                            &"a key of the wrong shape (removed)",
                        );
                        undecodable.push(Op::delete(Table::ServiceSlices, key));
                    }
                }
                Ok(true)
            },
        )?;
        if !undecodable.is_empty() {
            self.kv.write(undecodable)?;
        }
        for &slice in &slices {
            let in_slice = slice_prefix(slice, service);
            removed = removed.saturating_add(self.purge_index(
                Table::BySlice,
                &in_slice,
                cutoff,
                |key| parse_slice_key(slice, &in_slice, key),
            )?);
        }
        // The slice of the cutoff keeps the spans that start after it.
        slices.retain(|&slice| slice < slice_of(cutoff));
        self.unlist_if_empty(service, &slices)?;
        let legacy = self.purge_index(Table::ByService, &prefix, cutoff, |key| {
            parse_service_key(&prefix, key)
        })?;
        Ok(removed.saturating_add(legacy))
    }

    /// Removes the entries of `table` that start with `prefix` and started before `cutoff`,
    /// with the spans that arrived after they had expired (and those of the trace-keyed table);
    /// returns how many. An entry `parse` refuses is removed and counted.
    fn purge_index(
        &self,
        table: Table,
        prefix: &[u8],
        cutoff: u64,
        parse: impl Fn(&[u8]) -> Option<ServiceEntry>,
    ) -> Result<usize, StoreError> {
        let mut to = prefix.to_vec();
        to.extend_from_slice(&cutoff.to_be_bytes());
        let filed_before = arrival_second(cutoff);
        let mut removed: usize = 0;
        loop {
            let mut ops = Vec::new();
            let mut spans: usize = 0;
            // The (trace, second) entries of spans that arrived after they had expired, and
            // the spans to take out of each group (layout 7), by the group's key.
            let mut late: HashSet<(TraceId, u32)> = HashSet::new();
            let mut in_groups: HashMap<[u8; 29], Vec<(u64, SpanId)>> = HashMap::new();
            self.kv.scan(table, prefix, &to, false, &mut |key, _| {
                let Some((start, trace_id, span_id, at)) = parse(key) else {
                    self.damage.record(
                        DamageKind::UndecodableKey,
                        table.name(),
                        &"an index key of the wrong shape (removed)",
                    );
                    ops.push(Op::delete(table, key));
                    return Ok(ops.len() < CHUNK.saturating_mul(2));
                };
                spans = spans.saturating_add(1);
                match at {
                    SpanAt::Keyed => {
                        ops.push(Op::delete(Table::Spans, span_key(trace_id, start, span_id)));
                    }
                    // Spans filed before the cutoff's second go in arrival order below.
                    SpanAt::Arrived(second) | SpanAt::InGroup { second, .. }
                        if second < filed_before => {}
                    SpanAt::Arrived(second) => ops.push(Op::delete(
                        Table::SpansByArrival,
                        arrival_span_key(second, trace_id, start, span_id),
                    )),
                    SpanAt::InGroup { second, group } => in_groups
                        .entry(arrival_group_key(second, trace_id, group))
                        .or_default()
                        .push((start, span_id)),
                }
                if let Some(second) = at.second()
                    && second >= filed_before
                    && late.insert((trace_id, second))
                {
                    ops.push(Op::delete(
                        Table::TraceArrivals,
                        trace_arrival_key(trace_id, second),
                    ));
                }
                ops.push(Op::delete(table, key));
                Ok(ops.len() < CHUNK.saturating_mul(2))
            })?;
            if ops.is_empty() {
                return Ok(removed);
            }
            removed = removed.saturating_add(spans);
            for (group, members) in in_groups {
                self.take_out_of_group(group, &members, &mut ops)?;
            }
            self.kv.write(ops)?;
            self.keep_noted_if_used(late)?;
        }
    }

    /// Adds to `ops` what takes `members` (start, span ID) out of the group under `key`: the
    /// group written again without them, or deleted when nothing else is left in it. A group
    /// that is gone or does not decode is left as it is (its damage is counted where it is read).
    fn take_out_of_group(
        &self,
        key: [u8; 29],
        members: &[(u64, SpanId)],
        ops: &mut Vec<Op>,
    ) -> Result<(), StoreError> {
        let Some(group) = self.kv.get(Table::SpansByArrival, &key)? else {
            return Ok(());
        };
        match codec::group_without(&group, members) {
            Ok(Some(rest)) if rest.is_empty() => ops.push(Op::delete(Table::SpansByArrival, key)),
            Ok(Some(rest)) => ops.push(Op::put(Table::SpansByArrival, key, rest)),
            Ok(None) | Err(_) => {}
        }
        Ok(())
    }

    /// Removes `slices` from those listed for `service`, then lists again each that still
    /// holds entries of the service (a late span written meanwhile). Writes wait meanwhile: one
    /// that skipped listing a slice it knew listed has committed its entries before the check.
    fn unlist_if_empty(&self, service: &str, slices: &[u32]) -> Result<(), StoreError> {
        if slices.is_empty() {
            return Ok(());
        }
        let _unlisting = self.listed.unlisting();
        self.listed.forget(service, slices);
        let unlisted = slices
            .iter()
            .map(|&slice| Op::delete(Table::ServiceSlices, service_slice_key(service, slice)))
            .collect();
        self.kv.write(unlisted)?;
        self.put_back_if_used(
            Table::ServiceSlices,
            Table::BySlice,
            slices.iter().map(|&slice| {
                let in_slice = slice_prefix(slice, service);
                let to = prefix_end(&in_slice)
                    .unwrap_or_else(|| vec![0xff; in_slice.len().saturating_add(1)]);
                (service_slice_key(service, slice), in_slice, to)
            }),
        )
    }

    /// Whether a service index lists any entry of `service`.
    fn has_index_entries(&self, service: &str) -> Result<bool, StoreError> {
        let prefix = service_prefix(service);
        let to = prefix_end(&prefix).unwrap_or_else(|| vec![0xff; prefix.len().saturating_add(1)]);
        Ok(self.any_in(Table::ServiceSlices, &prefix, &to)?
            || self.any_in(Table::ByService, &prefix, &to)?)
    }

    /// Whether `table` holds a key in `[from, to)` (reads at most one entry).
    fn any_in(&self, table: Table, from: &[u8], to: &[u8]) -> Result<bool, StoreError> {
        let mut any = false;
        self.kv.scan(table, from, to, false, &mut |_, _| {
            any = true;
            Ok(false)
        })?;
        Ok(any)
    }

    /// Puts back the `trace_arrivals` entries just removed whose second still holds spans of
    /// their trace (other spans that came with the late one, or a write that raced the
    /// removal: it noted the entry before the removal, or sees the span after it).
    fn keep_noted_if_used(&self, removed: HashSet<(TraceId, u32)>) -> Result<(), StoreError> {
        self.put_back_if_used(
            Table::TraceArrivals,
            Table::SpansByArrival,
            removed.into_iter().map(|(trace_id, second)| {
                let (from, to) = arrival_trace_range(second, trace_id);
                (trace_arrival_key(trace_id, second).to_vec(), from, to)
            }),
        )
    }

    /// Puts back, with an empty value, each `(key, from, to)` of `table` whose range
    /// `[from, to)` of `holder` still holds a key.
    fn put_back_if_used(
        &self,
        table: Table,
        holder: Table,
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let mut ops = Vec::new();
        for (key, from, to) in entries {
            if self.any_in(holder, &from, &to)? {
                ops.push(Op::put(table, key, Vec::new()));
            }
        }
        if !ops.is_empty() {
            self.kv.write(ops)?;
        }
        Ok(())
    }

    /// Removes the spans filed before `second`, and their traces' entries of those seconds.
    fn purge_arrived_before(&self, second: u32) -> Result<(), StoreError> {
        let to = second.to_be_bytes();
        // Each chunk goes on after the last key removed: starting over from the first key
        // would step over every deletion made so far.
        let mut from: Vec<u8> = Vec::new();
        loop {
            let mut ops = Vec::new();
            let mut last_noted: Option<(TraceId, u32)> = None;
            let mut last_key: Option<Vec<u8>> = None;
            self.kv
                .scan(Table::SpansByArrival, &from, &to, false, &mut |key, _| {
                    match parse_arrival_key(key) {
                        // Keys are in (second, trace) order: each pair is noted once in a row.
                        Some((second, trace_id, _)) => {
                            if last_noted != Some((trace_id, second)) {
                                last_noted = Some((trace_id, second));
                                ops.push(Op::delete(
                                    Table::TraceArrivals,
                                    trace_arrival_key(trace_id, second),
                                ));
                            }
                        }
                        None => self.damage.record(
                            DamageKind::UndecodableKey,
                            "spans_by_arrival",
                            &"a key of the wrong length (removed)",
                        ),
                    }
                    ops.push(Op::delete(Table::SpansByArrival, key));
                    last_key = Some(key.to_vec());
                    Ok(ops.len() < CHUNK.saturating_mul(2))
                })?;
            let Some(mut last_key) = last_key else {
                return Ok(());
            };
            self.kv.write(ops)?;
            last_key.push(0);
            from = last_key;
        }
    }

    fn purge_operations(&self, service: &str, cutoff: u64) -> Result<(), StoreError> {
        let prefix = service_prefix(service);
        let to = prefix_end(&prefix).unwrap_or_else(|| vec![0xff; prefix.len().saturating_add(1)]);
        let mut ops = Vec::new();
        self.kv
            .scan(Table::Operations, &prefix, &to, false, &mut |k, v| {
                if last_seen(v) < cutoff {
                    ops.push(Op::delete(Table::Operations, k));
                }
                Ok(true)
            })?;
        if !ops.is_empty() {
            self.kv.write(ops)?;
        }
        Ok(())
    }
}
