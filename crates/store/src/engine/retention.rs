//! The retention pass: removes the spans that started before a cutoff with their index
//! entries, and the services and operations last seen before it. An index entry that does not
//! decode is removed too (it points nowhere) and counted; it never stops the pass, so expired
//! data keeps being removed whatever one key holds.

use super::{Store, last_seen};
use crate::StoreError;
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

    fn purge_service(&self, service: &str, cutoff: u64) -> Result<usize, StoreError> {
        let prefix = service_prefix(service);
        let mut to = prefix.clone();
        to.extend_from_slice(&cutoff.to_be_bytes());
        let mut removed: usize = 0;
        loop {
            let mut ops = Vec::new();
            let mut spans: usize = 0;
            self.kv
                .scan(Table::ByService, &prefix, &to, false, &mut |key, _| {
                    match parse_service_key(&prefix, key) {
                        Some((start, trace_id, span_id)) => {
                            ops.push(Op::Delete(Table::Spans, span_key(trace_id, start, span_id)));
                            spans = spans.saturating_add(1);
                        }
                        None => self.damage.record(
                            DamageKind::UndecodableKey,
                            "by_service",
                            &"an index key of the wrong shape (removed)",
                        ),
                    }
                    ops.push(Op::Delete(Table::ByService, key.to_vec()));
                    Ok(ops.len() < CHUNK.saturating_mul(2))
                })?;
            if ops.is_empty() {
                return Ok(removed);
            }
            removed = removed.saturating_add(spans);
            self.kv.write(ops)?;
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
