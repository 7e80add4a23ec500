//! The trace store: writes spans with their indexes, reads traces by ID, searches, lists
//! services and operations, derives dependencies, and removes expired data.
//!
//! Every method blocks (the engine does file I/O); async callers use `spawn_blocking`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtrace_model::{Process, Span, SpanId, Trace, TraceId};

use crate::StoreError;
use crate::codec::{self, decode_summary};
use crate::dict::{Dictionary, Pending};
use crate::group::GroupWriter;
use crate::kv::{Kv, Op, Table};
use crate::query::{DependencyLink, Operation, TraceQuery};

/// How many index entries a search reads before it checks their spans.
const CHUNK: usize = 512;
/// The most traces the dependency view reads for one window.
const DEPENDENCY_TRACE_CAP: usize = 20_000;

pub struct Store {
    kv: Arc<dyn Kv>,
    writer: GroupWriter,
    dict: Dictionary,
    retention: Duration,
    /// Processes already written (they are stored once, by hash).
    written_processes: Mutex<HashSet<u64>>,
    /// Processes already read.
    process_cache: Mutex<HashMap<u64, Arc<Process>>>,
}

pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Store {
    pub fn new(kv: Arc<dyn Kv>, retention: Duration) -> Result<Self, StoreError> {
        let mut entries = Vec::new();
        kv.scan(Table::Dictionary, &[], &[0xff; 5], false, &mut |k, v| {
            let id = u32::from_be_bytes(
                k.try_into()
                    .map_err(|_| StoreError::Corrupt("dictionary key is not 4 bytes"))?,
            );
            let text = String::from_utf8(v.to_vec())
                .map_err(|_| StoreError::Corrupt("dictionary entry is not UTF-8"))?;
            entries.push((id, text));
            Ok(true)
        })?;
        Ok(Store {
            writer: GroupWriter::new(kv.clone()),
            dict: Dictionary::from_entries(entries),
            kv,
            retention,
            written_processes: Mutex::new(HashSet::new()),
            process_cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn retention(&self) -> Duration {
        self.retention
    }

    pub fn disk_bytes(&self) -> u64 {
        self.kv.disk_bytes()
    }

    /// Writes memtables out and compacts (benchmarks measure settled disk use after it).
    pub fn compact(&self) -> Result<(), StoreError> {
        self.kv.compact()
    }

    /// Per-table disk use, for benchmarks.
    pub fn table_bytes(&self) -> Vec<(&'static str, u64)> {
        self.kv.table_bytes()
    }

    /// Finishes the writes queued, then makes everything durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.writer.close();
        self.kv.flush()
    }

    /// Writes spans and their index entries in one atomic, durable batch.
    pub fn write(&self, spans: &[Span]) -> Result<(), StoreError> {
        if spans.is_empty() {
            return Ok(());
        }
        let mut ops = Vec::with_capacity(spans.len() * 3 + 8);
        let mut new_processes: Vec<u64> = Vec::new();
        let mut process_hashes: HashMap<*const Process, u64> = HashMap::new();
        let mut services: HashMap<&str, u64> = HashMap::new();
        let mut operations: HashMap<(&str, &str, &str), u64> = HashMap::new();
        {
            let written = self.written_processes.lock().expect("lock poisoned");
            for span in spans {
                let ptr = Arc::as_ptr(&span.process);
                if process_hashes.contains_key(&ptr) {
                    continue;
                }
                let mut encoded = Vec::new();
                codec::encode_process(&span.process, &mut encoded);
                let hash = codec::process_hash(&encoded);
                process_hashes.insert(ptr, hash);
                if !written.contains(&hash) && !new_processes.contains(&hash) {
                    new_processes.push(hash);
                    ops.push(Op::Put(
                        Table::Processes,
                        hash.to_be_bytes().to_vec(),
                        encoded,
                    ));
                }
            }
        }
        let mut pending = Pending::default();
        for span in spans {
            let hash = process_hashes[&Arc::as_ptr(&span.process)];
            let service = span.process.service_name.as_str();
            let mut value = Vec::with_capacity(256);
            codec::encode_span(span, hash, &self.dict, &mut pending, &mut value);
            ops.push(Op::Put(
                Table::Spans,
                span_key(span.trace_id, span.start_time, span.span_id),
                value,
            ));
            let mut summary = Vec::with_capacity(48);
            codec::encode_summary(
                &span.operation_name,
                span.duration,
                &self.dict,
                &mut pending,
                &mut summary,
            );
            ops.push(Op::Put(
                Table::ByService,
                service_key(service, span.start_time, span.trace_id, span.span_id),
                summary,
            ));
            let seen = services.entry(service).or_default();
            *seen = (*seen).max(span.start_time);
            let seen = operations
                .entry((service, span.kind(), &span.operation_name))
                .or_default();
            *seen = (*seen).max(span.start_time);
        }
        for (service, seen) in services {
            ops.push(Op::Put(
                Table::Services,
                service.as_bytes().to_vec(),
                seen.to_be_bytes().to_vec(),
            ));
        }
        for ((service, kind, operation), seen) in operations {
            ops.push(Op::Put(
                Table::Operations,
                operation_key(service, kind, operation),
                seen.to_be_bytes().to_vec(),
            ));
        }
        let entries = self.dict.entries_to_write(&pending);
        for (id, text) in &entries {
            ops.push(Op::Put(
                Table::Dictionary,
                id.to_be_bytes().to_vec(),
                text.as_bytes().to_vec(),
            ));
        }
        self.writer.write(ops)?;
        let written: Vec<u32> = entries.iter().map(|(id, _)| *id).collect();
        self.dict.mark_committed(&written);
        self.written_processes
            .lock()
            .expect("lock poisoned")
            .extend(new_processes);
        Ok(())
    }

    pub fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StoreError> {
        let from = trace_id.to_bytes();
        let to = match trace_id.0.checked_add(1) {
            Some(next) => next.to_be_bytes().to_vec(),
            None => vec![0xff; 17],
        };
        let mut raw: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        self.kv.scan(Table::Spans, &from, &to, false, &mut |k, v| {
            raw.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        if raw.is_empty() {
            return Ok(None);
        }
        let spans = raw
            .iter()
            .map(|(k, v)| self.decode_span_entry(k, v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Trace {
            spans,
            warnings: Vec::new(),
        }))
    }

    fn decode_span_entry(&self, key: &[u8], value: &[u8]) -> Result<Span, StoreError> {
        let (trace_id, start, span_id) = parse_span_key(key)?;
        let process = self.process(codec::span_process_hash(value)?)?;
        Ok(codec::decode_span(
            trace_id, start, span_id, value, process, &self.dict,
        )?)
    }

    fn process(&self, hash: u64) -> Result<Arc<Process>, StoreError> {
        if let Some(p) = self.process_cache.lock().expect("lock poisoned").get(&hash) {
            return Ok(p.clone());
        }
        let value = self
            .kv
            .get(Table::Processes, &hash.to_be_bytes())?
            .ok_or(StoreError::Corrupt("a span refers to a missing process"))?;
        let process = Arc::new(codec::decode_process(&value)?);
        self.process_cache
            .lock()
            .expect("lock poisoned")
            .insert(hash, process.clone());
        Ok(process)
    }

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
        let prefix = service_prefix(service);
        let mut from = prefix.clone();
        from.extend_from_slice(&query.start_min.to_be_bytes());
        let mut to = prefix.clone();
        to.extend_from_slice(&query.start_max.saturating_add(1).to_be_bytes());

        let mut found: Vec<(u64, TraceId)> = Vec::new();
        let mut seen: HashSet<TraceId> = HashSet::new();
        let operation_id = query
            .operation
            .as_deref()
            .and_then(|op| codec::operation_id(&self.dict, op));
        let wanted: Vec<codec::WantedTag> = query
            .tags
            .iter()
            .map(|(k, v)| codec::WantedTag::new(k, v, &self.dict))
            .collect();
        loop {
            // Read a chunk of index entries that pass the cheap filters, newest first...
            let mut candidates: Vec<(u64, TraceId, SpanId)> = Vec::new();
            let mut last_key: Option<Vec<u8>> = None;
            let mut entries = 0;
            self.kv
                .scan(Table::ByService, &from, &to, true, &mut |key, value| {
                    entries += 1;
                    last_key = Some(key.to_vec());
                    let (start, trace_id, span_id) = parse_index_suffix(&key[prefix.len()..])?;
                    if seen.contains(&trace_id) {
                        return Ok(entries < CHUNK);
                    }
                    let summary = decode_summary(value)?;
                    let operation_ok = query
                        .operation
                        .as_ref()
                        .is_none_or(|op| summary.operation_is(op, operation_id));
                    let duration_ok = query.duration_min.is_none_or(|min| summary.duration >= min)
                        && query.duration_max.is_none_or(|max| summary.duration <= max);
                    if operation_ok && duration_ok {
                        candidates.push((start, trace_id, span_id));
                    }
                    Ok(entries < CHUNK)
                })?;
            // ...then check tags on the spans themselves, outside the scan. (Checking a whole
            // trace with one range read instead was measured slower at 10 M spans: range reads
            // merge every table of the tree, point reads are filtered by the bloom filters.)
            for (start, trace_id, span_id) in candidates {
                if seen.contains(&trace_id) {
                    continue;
                }
                if !query.tags.is_empty() {
                    let key = span_key(trace_id, start, span_id);
                    let Some(value) = self.kv.get(Table::Spans, &key)? else {
                        continue;
                    };
                    let process = self.process(codec::span_process_hash(&value)?)?;
                    if !codec::span_has_tags(&value, &wanted, &process)? {
                        continue;
                    }
                }
                seen.insert(trace_id);
                found.push((start, trace_id));
                if found.len() >= limit {
                    return Ok(found);
                }
            }
            match last_key {
                Some(key) if entries >= CHUNK => to = key,
                _ => return Ok(found),
            }
        }
    }

    /// Every service ever written and not yet purged, however long ago it was seen.
    fn all_services(&self) -> Result<Vec<String>, StoreError> {
        let mut services = Vec::new();
        self.kv
            .scan(Table::Services, &[], &[0xff], false, &mut |k, _| {
                services.push(String::from_utf8_lossy(k).into_owned());
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

    fn oldest_visible(&self) -> u64 {
        now_micros().saturating_sub(self.retention.as_micros() as u64)
    }

    pub fn services(&self) -> Result<Vec<String>, StoreError> {
        let cutoff = self.oldest_visible();
        let mut services = Vec::new();
        self.kv
            .scan(Table::Services, &[], &[0xff], false, &mut |k, v| {
                if last_seen(v) >= cutoff {
                    services.push(String::from_utf8_lossy(k).into_owned());
                }
                Ok(true)
            })?;
        Ok(services)
    }

    /// Operations of a service, optionally of one span kind ("" is a span without a kind).
    pub fn operations(
        &self,
        service: &str,
        kind: Option<&str>,
    ) -> Result<Vec<Operation>, StoreError> {
        let cutoff = self.oldest_visible();
        let prefix = service_prefix(service);
        let mut to = prefix.clone();
        to.push(0xff);
        let mut operations = Vec::new();
        self.kv
            .scan(Table::Operations, &prefix, &to, false, &mut |k, v| {
                let rest = &k[prefix.len()..];
                let Some(split) = rest.iter().position(|b| *b == 0) else {
                    return Err(StoreError::Corrupt("operation key without a kind"));
                };
                let span_kind = String::from_utf8_lossy(&rest[..split]).into_owned();
                let name = String::from_utf8_lossy(&rest[split + 1..]).into_owned();
                if last_seen(v) >= cutoff && kind.is_none_or(|k| k == span_kind) {
                    operations.push(Operation { name, span_kind });
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
        for service in self.all_services()? {
            let prefix = service_prefix(&service);
            let mut from = prefix.clone();
            from.extend_from_slice(&end.saturating_sub(lookback).to_be_bytes());
            let mut to = prefix.clone();
            to.extend_from_slice(&end.saturating_add(1).to_be_bytes());
            self.kv
                .scan(Table::ByService, &from, &to, true, &mut |key, _| {
                    let (_, trace_id, _) = parse_index_suffix(&key[prefix.len()..])?;
                    if seen.insert(trace_id) {
                        trace_ids.push(trace_id);
                    }
                    Ok(trace_ids.len() < DEPENDENCY_TRACE_CAP)
                })?;
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
                    *counts
                        .entry((parent.to_string(), span.process.service_name.clone()))
                        .or_default() += 1;
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

    /// Removes every span that started before `cutoff` (µs), with its index entries. Returns
    /// how many spans were removed.
    pub fn purge_before(&self, cutoff: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for service in self.all_services()? {
            let prefix = service_prefix(&service);
            let mut to = prefix.clone();
            to.extend_from_slice(&cutoff.to_be_bytes());
            loop {
                let mut ops = Vec::new();
                self.kv
                    .scan(Table::ByService, &prefix, &to, false, &mut |key, _| {
                        let (start, trace_id, span_id) = parse_index_suffix(&key[prefix.len()..])?;
                        ops.push(Op::Delete(Table::Spans, span_key(trace_id, start, span_id)));
                        ops.push(Op::Delete(Table::ByService, key.to_vec()));
                        Ok(ops.len() < CHUNK * 2)
                    })?;
                if ops.is_empty() {
                    break;
                }
                removed += ops.len() / 2;
                self.kv.write(ops)?;
            }
        }
        Ok(removed)
    }
}

fn last_seen(value: &[u8]) -> u64 {
    value.try_into().map(u64::from_be_bytes).unwrap_or(u64::MAX)
}

fn span_key(trace_id: TraceId, start: u64, span_id: SpanId) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(&trace_id.to_bytes());
    key.extend_from_slice(&start.to_be_bytes());
    key.extend_from_slice(&span_id.to_bytes());
    key
}

fn parse_span_key(key: &[u8]) -> Result<(TraceId, u64, SpanId), StoreError> {
    if key.len() != 32 {
        return Err(StoreError::Corrupt("span key is not 32 bytes"));
    }
    Ok((
        TraceId(u128::from_be_bytes(key[..16].try_into().expect("16"))),
        u64::from_be_bytes(key[16..24].try_into().expect("8")),
        SpanId(u64::from_be_bytes(key[24..].try_into().expect("8"))),
    ))
}

fn service_prefix(service: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(service.len() + 33);
    key.extend_from_slice(service.as_bytes());
    key.push(0);
    key
}

fn service_key(service: &str, start: u64, trace_id: TraceId, span_id: SpanId) -> Vec<u8> {
    let mut key = service_prefix(service);
    key.extend_from_slice(&time_key(start, trace_id, span_id));
    key
}

fn time_key(start: u64, trace_id: TraceId, span_id: SpanId) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(&start.to_be_bytes());
    key.extend_from_slice(&trace_id.to_bytes());
    key.extend_from_slice(&span_id.to_bytes());
    key
}

/// start | trace | span, the end of every index key.
fn parse_index_suffix(suffix: &[u8]) -> Result<(u64, TraceId, SpanId), StoreError> {
    if suffix.len() != 32 {
        return Err(StoreError::Corrupt("index key has the wrong length"));
    }
    Ok((
        u64::from_be_bytes(suffix[..8].try_into().expect("8")),
        TraceId(u128::from_be_bytes(suffix[8..24].try_into().expect("16"))),
        SpanId(u64::from_be_bytes(suffix[24..].try_into().expect("8"))),
    ))
}

fn operation_key(service: &str, kind: &str, operation: &str) -> Vec<u8> {
    let mut key = service_prefix(service);
    key.extend_from_slice(kind.as_bytes());
    key.push(0);
    key.extend_from_slice(operation.as_bytes());
    key
}
