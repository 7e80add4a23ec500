//! Group commit: one writer thread takes every batch waiting, writes them as one engine batch
//! with one fsync, and answers them all. Concurrent ingest requests then share the cost of
//! syncing the journal instead of queueing for a sync each.

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::StoreError;
use crate::kv::{Kv, Op, Table};

/// The most operations one group carries (a bound on the memory a group holds).
const MAX_GROUP_OPS: usize = 20_000;

struct Job {
    ops: Vec<Op>,
    done: SyncSender<Result<(), String>>,
}

/// A submitted write; `wait` returns once its group is synced (or failed).
pub struct Ticket(Receiver<Result<(), String>>);

impl Ticket {
    pub fn wait(self) -> Result<(), StoreError> {
        self.0
            .recv()
            .map_err(|_| StoreError::Write("the writer thread stopped".into()))?
            .map_err(StoreError::Write)
    }
}

pub struct GroupWriter {
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[allow(
    clippy::expect_used,
    reason = "a writer thread that cannot start or a poisoned lock (a panic mid-write) leaves no store to serve"
)]
impl GroupWriter {
    pub fn new(kv: Arc<dyn Kv>) -> GroupWriter {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("meshtrace-writer".into())
            .spawn(move || write_groups(kv, queue))
            .expect("the writer thread starts");
        GroupWriter {
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Writes `ops` durably; returns once the group holding them is synced.
    pub fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.submit(ops)?.wait()
    }

    /// Queues `ops` without waiting: writes submitted one after the other are applied in that
    /// order (the derived metrics rely on it: a later cell value lands after an earlier one).
    pub fn submit(&self, ops: Vec<Op>) -> Result<Ticket, StoreError> {
        let (done, result) = mpsc::sync_channel(1);
        let sender = self.jobs.lock().expect("lock poisoned").clone();
        let sender = sender.ok_or_else(|| StoreError::Write("the store is closed".into()))?;
        sender
            .send(Job { ops, done })
            .map_err(|_| StoreError::Write("the writer thread stopped".into()))?;
        Ok(Ticket(result))
    }

    /// Stops the writer after the jobs already queued.
    pub fn close(&self) {
        self.jobs.lock().expect("lock poisoned").take();
        if let Some(thread) = self.thread.lock().expect("lock poisoned").take() {
            let _ = thread.join();
        }
    }
}

impl Drop for GroupWriter {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_groups(kv: Arc<dyn Kv>, queue: Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut size = first.ops.len();
        let mut jobs = vec![first];
        while size < MAX_GROUP_OPS {
            match queue.try_recv() {
                Ok(job) => {
                    size = size.saturating_add(job.ops.len());
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut ops = Vec::with_capacity(size);
        let mut waiting = Vec::with_capacity(jobs.len());
        let several = jobs.len() > 1;
        for job in jobs {
            ops.extend(job.ops);
            waiting.push(job.done);
        }
        // One job writes each key once; several may rewrite the same cells.
        let ops = if several { coalesce(ops) } else { ops };
        let result = kv.write(ops).map_err(|e| e.to_string());
        for done in waiting {
            let _ = done.send(result.clone());
        }
    }
}

/// Tables whose keys many batches rewrite: the derived metrics' cells (each batch writes the
/// cells it changed, whole), and the services' and operations' last-seen times.
fn rewritten(table: Table) -> Option<usize> {
    match table {
        Table::MetricCells => Some(0),
        Table::Services => Some(1),
        Table::Operations => Some(2),
        _ => None,
    }
}

/// One group is one atomic engine batch, so of the writes of one key of a rewritten table only
/// the last counts (the engine keeps the last of equal keys in a batch too): the earlier ones
/// are dropped before they cost journal bytes and memtable inserts. The state after the group
/// is the same.
fn coalesce(ops: Vec<Op>) -> Vec<Op> {
    let keep: Vec<bool> = {
        let mut seen: HashSet<(usize, &[u8])> = HashSet::new();
        let mut keep = vec![true; ops.len()];
        for (op, keep) in ops.iter().zip(keep.iter_mut()).rev() {
            let (table, key) = match op {
                Op::Put(table, key, _) | Op::Delete(table, key) => (*table, &key[..]),
            };
            if let Some(t) = rewritten(table) {
                *keep = seen.insert((t, key));
            }
        }
        keep
    };
    if keep.iter().all(|k| *k) {
        return ops;
    }
    ops.into_iter()
        .zip(keep)
        .filter_map(|(op, keep)| keep.then_some(op))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn put(table: Table, key: &[u8], value: &[u8]) -> Op {
        Op::put(table, key, value)
    }

    #[test]
    fn only_the_last_write_of_a_rewritten_key_is_kept() {
        let ops = vec![
            put(Table::MetricCells, b"a", b"1"),
            put(Table::Spans, b"a", b"span"),
            put(Table::MetricCells, b"b", b"1"),
            put(Table::MetricCells, b"a", b"2"),
            put(Table::Spans, b"a", b"span again"),
            Op::delete(Table::MetricCells, &b"b"[..]),
            put(Table::Services, b"s", b"9"),
        ];
        let kept: Vec<(Table, Vec<u8>, Option<Vec<u8>>)> = coalesce(ops)
            .into_iter()
            .map(|op| match op {
                Op::Put(t, k, v) => (t, k.to_vec(), Some(v.to_vec())),
                Op::Delete(t, k) => (t, k.to_vec(), None),
            })
            .collect();
        assert_eq!(
            kept,
            vec![
                (Table::Spans, b"a".to_vec(), Some(b"span".to_vec())),
                (Table::MetricCells, b"a".to_vec(), Some(b"2".to_vec())),
                (Table::Spans, b"a".to_vec(), Some(b"span again".to_vec())),
                (Table::MetricCells, b"b".to_vec(), None),
                (Table::Services, b"s".to_vec(), Some(b"9".to_vec())),
            ]
        );
    }
}
