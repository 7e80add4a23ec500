//! Searches, the service and operation lists, and dependencies. Index entries that do not
//! decode are skipped and counted, so one odd key never fails a search.

use std::collections::{HashMap, HashSet};

use meshtrace_model::{SpanId, Trace, TraceId};

use super::{Store, last_seen, stored_span};
use crate::StoreError;
use crate::codec::{self, decode_summary};
use crate::damage::DamageKind;
use crate::keys::{
    ServiceEntry, SpanAt, parse_operation_key, parse_service_key, parse_service_slice_key,
    parse_slice_key, prefix_end, service_prefix, service_slices_range, slice_of, slice_prefix,
};
use crate::kv::Table;
use crate::query::{DependencyLink, Operation, TraceQuery};

/// How many index entries a search reads before it checks their spans.
const CHUNK: usize = 512;
/// The most traces the dependency view reads for one window.
const DEPENDENCY_TRACE_CAP: usize = 20_000;

/// The bounds of the index keys of `prefix` whose start time is in `[min, max]`.
fn time_range(prefix: &[u8], min: u64, max: u64) -> (Vec<u8>, Vec<u8>) {
    let mut from = prefix.to_vec();
    from.extend_from_slice(&min.to_be_bytes());
    let to = match max.checked_add(1) {
        Some(end) => {
            let mut to = prefix.to_vec();
            to.extend_from_slice(&end.to_be_bytes());
            to
        }
        None => prefix_end(prefix).unwrap_or_else(|| vec![0xff; prefix.len().saturating_add(9)]),
    };
    (from, to)
}

/// One run of index entries: `by_service`'s entries of a service (layouts 2 to 5), or those of
/// one slice of `by_slice` (layout 6), in a window of start times.
struct IndexRange {
    /// The slice of `by_slice` the range is in (None: `by_service`).
    slice: Option<u32>,
    /// What every key of the range starts with: the service's part, after the slice if any.
    prefix: Vec<u8>,
    from: Vec<u8>,
    to: Vec<u8>,
}

impl IndexRange {
    fn by_service(service: &str, min: u64, max: u64) -> Self {
        let prefix = service_prefix(service);
        let (from, to) = time_range(&prefix, min, max);
        IndexRange {
            slice: None,
            prefix,
            from,
            to,
        }
    }

    fn in_slice(slice: u32, service: &str, min: u64, max: u64) -> Self {
        let prefix = slice_prefix(slice, service);
        let (from, to) = time_range(&prefix, min, max);
        IndexRange {
            slice: Some(slice),
            prefix,
            from,
            to,
        }
    }

    fn table(&self) -> Table {
        match self.slice {
            None => Table::ByService,
            Some(_) => Table::BySlice,
        }
    }

    /// The entry of one of the range's keys; None when the key is not of the range's shape.
    fn parse(&self, key: &[u8]) -> Option<ServiceEntry> {
        match self.slice {
            None => parse_service_key(&self.prefix, key),
            Some(slice) => parse_slice_key(slice, &self.prefix, key),
        }
    }
}

/// What a search asks of each index entry, worked out once per search.
struct Filter<'q> {
    query: &'q TraceQuery,
    operation_id: Option<u32>,
    wanted: Vec<codec::WantedTag>,
}

impl Store {
    /// The IDs of the traces that match, most recent matching span first.
    pub fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StoreError> {
        let limit = query.limit.max(1);
        let matches = match &query.service {
            Some(service) => self.find_in_service(service, query, limit)?,
            None => {
                // Every service's most recent matches, merged by time.
                let mut all = Vec::new();
                for service in self.all_services()? {
                    all.extend(self.find_in_service(&service, query, limit)?);
                }
                all.sort_by_key(|m| std::cmp::Reverse(m.0));
                all
            }
        };
        let mut seen = HashSet::new();
        Ok(matches
            .into_iter()
            .map(|(_, trace_id)| trace_id)
            .filter(|id| seen.insert(*id))
            .take(limit)
            .collect())
    }

    /// Up to `limit` traces with a matching span of `service`, newest first, with the start
    /// time of that span.
    fn find_in_service(
        &self,
        service: &str,
        query: &TraceQuery,
        limit: usize,
    ) -> Result<Vec<(u64, TraceId)>, StoreError> {
        let filter = Filter {
            query,
            operation_id: query
                .operation
                .as_deref()
                .and_then(|op| codec::operation_id(&self.dict, op)),
            wanted: query
                .tags
                .iter()
                .map(|(k, v)| codec::WantedTag::new(k, v, &self.dict))
                .collect(),
        };
        // The slices hold disjoint start times: read newest first, their matches come in order.
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        for slice in self.listed_slices(service, query.start_min, query.start_max)? {
            let range = IndexRange::in_slice(slice, service, query.start_min, query.start_max);
            self.collect_matches(&range, &filter, limit, &mut seen, &mut found)?;
            if found.len() >= limit {
                break;
            }
        }
        // Entries of layouts 2 to 5 (none in a store created at layout 6: one empty seek).
        let legacy = IndexRange::by_service(service, query.start_min, query.start_max);
        let mut older = Vec::new();
        self.collect_matches(&legacy, &filter, limit, &mut HashSet::new(), &mut older)?;
        if !older.is_empty() {
            found.extend(older);
            found.sort_by_key(|m| std::cmp::Reverse(m.0));
            let mut seen = HashSet::new();
            found.retain(|(_, trace_id)| seen.insert(*trace_id));
            found.truncate(limit);
        }
        Ok(found)
    }

    /// The slices of `by_slice` that hold entries of `service` starting in `[min, max]`, newest
    /// first, as `service_slices` lists them.
    fn listed_slices(&self, service: &str, min: u64, max: u64) -> Result<Vec<u32>, StoreError> {
        let prefix = service_prefix(service);
        let (from, to) = service_slices_range(service, slice_of(min), slice_of(max));
        let mut slices = Vec::new();
        self.kv
            .scan(Table::ServiceSlices, &from, &to, true, &mut |key, _| {
                match parse_service_slice_key(&prefix, key) {
                    Some(slice) => slices.push(slice),
                    None => self.damage.record(
                        DamageKind::UndecodableKey,
                        "service_slices",
                        &"a key of the wrong shape",
                    ),
                }
                Ok(true)
            })?;
        Ok(slices)
    }

    /// Adds to `found` the traces of `range` (newest first) that match `filter` and are not in
    /// `seen`, until `found` holds `limit`.
    fn collect_matches(
        &self,
        range: &IndexRange,
        filter: &Filter<'_>,
        limit: usize,
        seen: &mut HashSet<TraceId>,
        found: &mut Vec<(u64, TraceId)>,
    ) -> Result<(), StoreError> {
        let table = range.table().name();
        let query = filter.query;
        let mut to = range.to.clone();
        loop {
            // Read a chunk of index entries that pass the cheap filters, newest first...
            // (the entry, whether its tags are known to match)
            let mut candidates: Vec<(ServiceEntry, bool)> = Vec::new();
            let mut last_key: Option<Vec<u8>> = None;
            let mut entries: usize = 0;
            self.kv
                .scan(range.table(), &range.from, &to, true, &mut |key, value| {
                    entries = entries.saturating_add(1);
                    last_key = Some(key.to_vec());
                    let Some(entry) = range.parse(key) else {
                        self.damage.record(
                            DamageKind::UndecodableKey,
                            table,
                            &"an index key of the wrong shape",
                        );
                        return Ok(entries < CHUNK);
                    };
                    let (_, trace_id, _, _) = entry;
                    if seen.contains(&trace_id) {
                        return Ok(entries < CHUNK);
                    }
                    let summary = match decode_summary(value) {
                        Ok(summary) => summary,
                        Err(error) => {
                            self.damage
                                .record(DamageKind::UndecodableValue, table, &error);
                            return Ok(entries < CHUNK);
                        }
                    };
                    let operation_ok = query
                        .operation
                        .as_ref()
                        .is_none_or(|op| summary.operation_is(op, filter.operation_id));
                    let duration_ok = query.duration_min.is_none_or(|min| summary.duration >= min)
                        && query.duration_max.is_none_or(|max| summary.duration <= max);
                    if operation_ok && duration_ok {
                        // The entry's tag section decides when it can (no read of the span).
                        let decided = if filter.wanted.is_empty() {
                            Some(true)
                        } else {
                            summary.has_tags(&filter.wanted).unwrap_or_else(|error| {
                                self.damage
                                    .record(DamageKind::UndecodableValue, table, &error);
                                None
                            })
                        };
                        match decided {
                            Some(false) => {}
                            Some(true) => candidates.push((entry, true)),
                            None => candidates.push((entry, false)),
                        }
                    }
                    Ok(entries < CHUNK)
                })?;
            // ...then check tags on the spans themselves where the entry could not, outside the
            // scan, one point read each (`stored_span`: the entry names the span's key, or its
            // write's group). (Checking a whole trace with one range read instead was measured
            // slower at 10 M spans: range reads merge every table of the tree, point reads are
            // filtered by the bloom filters.)
            for (entry, matched) in candidates {
                let (start, trace_id, _, _) = entry;
                if seen.contains(&trace_id) {
                    continue;
                }
                if !matched && !self.span_has_tags(table, entry, &filter.wanted)? {
                    continue;
                }
                seen.insert(trace_id);
                found.push((start, trace_id));
                if found.len() >= limit {
                    return Ok(());
                }
            }
            match last_key {
                Some(key) if entries >= CHUNK => to = key,
                _ => return Ok(()),
            }
        }
    }

    /// Whether the stored span has every wanted tag; false (counted) when it is missing or
    /// does not decode.
    fn span_has_tags(
        &self,
        index: &'static str,
        entry: ServiceEntry,
        wanted: &[codec::WantedTag],
    ) -> Result<bool, StoreError> {
        let (_, trace_id, _, at) = entry;
        let Some(value) = stored_span(&*self.kv, entry)? else {
            self.damage.record(
                DamageKind::DanglingIndexEntry,
                index,
                &format_args!("trace {trace_id}: an index entry without its span"),
            );
            return Ok(false);
        };
        let matched = codec::span_process_hash(&value).and_then(|hash| {
            let (process, _) = self
                .process(hash)
                .map_err(|_| codec::CorruptError("process"))?;
            codec::span_has_tags(&value, wanted, &process)
        });
        match matched {
            Ok(matched) => Ok(matched),
            Err(error) => {
                let table = match at {
                    SpanAt::Keyed => Table::Spans,
                    SpanAt::Arrived(_) | SpanAt::InGroup { .. } => Table::SpansByArrival,
                };
                self.damage
                    .record(DamageKind::UndecodableValue, table.name(), &error);
                Ok(false)
            }
        }
    }

    /// Every service ever written and not yet purged, however long ago it was seen.
    pub(super) fn all_services(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .services_seen()?
            .into_iter()
            .map(|(service, _)| service)
            .collect())
    }

    /// Every service with when it was last seen; names that are not UTF-8 are skipped.
    pub(super) fn services_seen(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut services = Vec::new();
        self.kv
            .scan(Table::Services, &[], &[0xff], false, &mut |k, v| {
                match std::str::from_utf8(k) {
                    Ok(name) => services.push((name.to_string(), last_seen(v))),
                    Err(_) => self.damage.record(
                        DamageKind::UndecodableKey,
                        "services",
                        &"a service name is not UTF-8",
                    ),
                }
                Ok(true)
            })?;
        Ok(services)
    }

    pub fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>, StoreError> {
        let ids = self.find_trace_ids(query)?;
        let mut traces = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(trace) = self.get_trace(id)? {
                traces.push(trace);
            }
        }
        Ok(traces)
    }

    pub fn services(&self) -> Result<Vec<String>, StoreError> {
        let cutoff = self.oldest_visible();
        Ok(self
            .services_seen()?
            .into_iter()
            .filter(|(_, seen)| *seen >= cutoff)
            .map(|(service, _)| service)
            .collect())
    }

    /// Operations of a service, optionally of one span kind ("" is a span without a kind).
    pub fn operations(
        &self,
        service: &str,
        kind: Option<&str>,
    ) -> Result<Vec<Operation>, StoreError> {
        let cutoff = self.oldest_visible();
        let prefix = service_prefix(service);
        let to = prefix_end(&prefix).unwrap_or_else(|| vec![0xff; prefix.len().saturating_add(1)]);
        let mut operations = Vec::new();
        self.kv
            .scan(Table::Operations, &prefix, &to, false, &mut |k, v| {
                match parse_operation_key(k) {
                    Some((owner, span_kind, name)) if owner == service => {
                        if last_seen(v) >= cutoff && kind.is_none_or(|k| k == span_kind) {
                            operations.push(Operation {
                                name: name.to_string(),
                                span_kind: span_kind.to_string(),
                            });
                        }
                    }
                    _ => self.damage.record(
                        DamageKind::UndecodableKey,
                        "operations",
                        &"an operation key of the wrong shape",
                    ),
                }
                Ok(true)
            })?;
        Ok(operations)
    }

    /// Calls between services in `[end - lookback, end]`: for every span whose parent (in the
    /// same trace) belongs to another service, one call parent service → span's service.
    pub fn dependencies(&self, end: u64, lookback: u64) -> Result<Vec<DependencyLink>, StoreError> {
        let mut trace_ids: Vec<TraceId> = Vec::new();
        let mut seen = HashSet::new();
        let (min, max) = (end.saturating_sub(lookback), end);
        for service in self.all_services()? {
            // Each range is built when it is read: the cap may stop before the last.
            let ranges = self
                .listed_slices(&service, min, max)?
                .into_iter()
                .map(|slice| IndexRange::in_slice(slice, &service, min, max))
                .chain(std::iter::once_with(|| {
                    IndexRange::by_service(&service, min, max)
                }));
            for range in ranges {
                if trace_ids.len() >= DEPENDENCY_TRACE_CAP {
                    break;
                }
                self.kv.scan(
                    range.table(),
                    &range.from,
                    &range.to,
                    true,
                    &mut |key, _| {
                        match range.parse(key) {
                            Some((_, trace_id, _, _)) => {
                                if seen.insert(trace_id) {
                                    trace_ids.push(trace_id);
                                }
                            }
                            None => self.damage.record(
                                DamageKind::UndecodableKey,
                                range.table().name(),
                                &"an index key of the wrong shape",
                            ),
                        }
                        Ok(trace_ids.len() < DEPENDENCY_TRACE_CAP)
                    },
                )?;
            }
        }
        let mut counts: HashMap<(String, String), u64> = HashMap::new();
        for id in trace_ids {
            let Some(trace) = self.get_trace(id)? else {
                continue;
            };
            let services: HashMap<SpanId, &str> = trace
                .spans
                .iter()
                .map(|s| (s.span_id, s.process.service_name.as_str()))
                .collect();
            for span in &trace.spans {
                let Some(parent) = span.parent_span_id().and_then(|p| services.get(&p)) else {
                    continue;
                };
                if *parent != span.process.service_name {
                    let count = counts
                        .entry((parent.to_string(), span.process.service_name.clone()))
                        .or_default();
                    *count = count.saturating_add(1);
                }
            }
        }
        let mut links: Vec<DependencyLink> = counts
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink {
                parent,
                child,
                call_count,
            })
            .collect();
        links.sort_by(|a, b| (&a.parent, &a.child).cmp(&(&b.parent, &b.child)));
        Ok(links)
    }
}
