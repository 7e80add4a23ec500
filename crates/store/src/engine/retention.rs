//! The retention pass: removes the spans that started before a cutoff with their index
//! entries, and the services and operations last seen before it. An index entry that does not
//! decode is removed too (it points nowhere) and counted; it never stops the pass, so expired
//! data keeps being removed whatever one key holds.

use super::{Store, last_seen};
use crate::StoreError;
use crate::codec;
use crate::damage::DamageKind;
use crate::keys::{parse_service_key, prefix_end, service_prefix, span_key};
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
                self.kv.write(vec![Op::Delete(Table::Services, name)])?;
                continue;
            };
            removed = removed.saturating_add(self.purge_service(service, cutoff)?);
            self.purge_operations(service, cutoff)?;
            // A batch of this service written meanwhile puts its entry back with a later time;
            // if this delete lands after it, the service is listed again with its next span.
            if seen < cutoff {
                self.kv.write(vec![Op::Delete(Table::Services, name)])?;
            }
        }
        if let Some(derive) = &self.derive {
            let cells =
                derive.purge_before(&*self.kv, &self.damage, &self.writer, cutoff / 1000)?;
            if cells > 0 {
                tracing::debug!(cells, "expired metric buckets removed");
            }
        }
        Ok(removed)
    }

    /// Removes the spans of `service` that started before `cutoff` with their index entries. An
    /// entry whose spans straddle the cutoff (`codec/group.rs`) loses only the older ones: it is
    /// written again with the rest.
    fn purge_service(&self, service: &str, cutoff: u64) -> Result<usize, StoreError> {
        let prefix = service_prefix(service);
        let mut from = prefix.clone();
        let mut to = prefix.clone();
        to.extend_from_slice(&cutoff.to_be_bytes());
        let mut removed: usize = 0;
        loop {
            let mut ops = Vec::new();
            let mut spans: usize = 0;
            let mut last_key: Option<Vec<u8>> = None;
            self.kv
                .scan(Table::ByService, &from, &to, false, &mut |key, value| {
                    last_key = Some(key.to_vec());
                    let Some((start, trace_id, key_id)) = parse_service_key(&prefix, key) else {
                        self.damage.record(
                            DamageKind::UndecodableKey,
                            "by_service",
                            &"an index key of the wrong shape (removed)",
                        );
                        ops.push(Op::Delete(Table::ByService, key.to_vec()));
                        return Ok(ops.len() < CHUNK.saturating_mul(2));
                    };
                    let members = match codec::decode_entry(start, key_id, value) {
                        Ok(members) => members,
                        Err(error) => {
                            // Its spans cannot be told: the one its key names (if any) goes.
                            self.damage
                                .record(DamageKind::UndecodableValue, "by_service", &error);
                            if !codec::is_group(value) {
                                ops.push(Op::Delete(
                                    Table::Spans,
                                    span_key(trace_id, start, key_id),
                                ));
                            }
                            ops.push(Op::Delete(Table::ByService, key.to_vec()));
                            return Ok(ops.len() < CHUNK.saturating_mul(2));
                        }
                    };
                    let (old, kept): (Vec<_>, Vec<_>) =
                        members.into_iter().partition(|m| m.start < cutoff);
                    for m in &old {
                        ops.push(Op::Delete(
                            Table::Spans,
                            span_key(trace_id, m.start, m.span_id),
                        ));
                        spans = spans.saturating_add(1);
                    }
                    if kept.is_empty() {
                        ops.push(Op::Delete(Table::ByService, key.to_vec()));
                    } else if !old.is_empty() {
                        let rest: Vec<codec::GroupMember> = kept
                            .iter()
                            .map(|m| codec::GroupMember {
                                start: m.start,
                                span_id: m.span_id,
                                summary: m.raw.to_vec(),
                            })
                            .collect();
                        let mut value = Vec::new();
                        codec::encode_group(start, &rest, &mut value);
                        ops.push(Op::Put(Table::ByService, key.to_vec(), value));
                    }
                    Ok(ops.len() < CHUNK.saturating_mul(2))
                })?;
            let Some(mut next) = last_key else {
                return Ok(removed);
            };
            removed = removed.saturating_add(spans);
            if !ops.is_empty() {
                self.kv.write(ops)?;
            }
            // The next pass starts just after the last entry read (one kept in part stays).
            next.push(0);
            from = next;
        }
    }

    fn purge_operations(&self, service: &str, cutoff: u64) -> Result<(), StoreError> {
        let prefix = service_prefix(service);
        let to = prefix_end(&prefix).unwrap_or_else(|| vec![0xff; prefix.len().saturating_add(1)]);
        let mut ops = Vec::new();
        self.kv
            .scan(Table::Operations, &prefix, &to, false, &mut |k, v| {
                if last_seen(v) < cutoff {
                    ops.push(Op::Delete(Table::Operations, k.to_vec()));
                }
                Ok(true)
            })?;
        if !ops.is_empty() {
            self.kv.write(ops)?;
        }
        Ok(())
    }
}
