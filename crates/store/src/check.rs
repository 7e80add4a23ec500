//! `meshtrace store --check`: verifies a data directory offline and says what is damaged —
//! acknowledged batches the journal lost, keys and values that do not decode, spans whose
//! process or dictionary strings are missing, spans without their index entry and index
//! entries without their span. It opens the directory as the store does (so the store must be
//! stopped: the engine locks it, and truncates a damaged journal tail as a start would) and
//! writes nothing of its own.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::codec;
use crate::dict::Dictionary;
use crate::keys::{parse_any_service_key, parse_operation_key, parse_span_key, service_key};
use crate::kv::{FjallKv, Kv, Recovery, Table};
use crate::layout::AckRecord;
use crate::{StoreError, dict};

/// Examples kept per kind of problem.
const EXAMPLES: usize = 5;

#[derive(Debug, Default)]
pub struct CheckReport {
    /// Entries read, per table.
    pub checked: BTreeMap<&'static str, u64>,
    /// Problems by kind: how many, and the first few.
    pub problems: BTreeMap<&'static str, (u64, Vec<String>)>,
    pub recovery: Recovery,
}

impl CheckReport {
    pub fn is_damaged(&self) -> bool {
        !self.problems.is_empty()
    }

    fn problem(&mut self, kind: &'static str, example: impl FnOnce() -> String) {
        let entry = self.problems.entry(kind).or_default();
        entry.0 = entry.0.saturating_add(1);
        if entry.1.len() < EXAMPLES {
            entry.1.push(example());
        }
    }

    fn count(&mut self, table: Table) {
        let n = self.checked.entry(table.name()).or_default();
        *n = n.saturating_add(1);
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (table, n) in &self.checked {
            writeln!(f, "{table}: {n} entries checked")?;
        }
        if self.problems.is_empty() {
            return writeln!(f, "no damage found");
        }
        writeln!(f, "DAMAGED:")?;
        for (kind, (n, examples)) in &self.problems {
            writeln!(f, "  {kind}: {n}")?;
            for example in examples {
                writeln!(f, "    - {example}")?;
            }
        }
        Ok(())
    }
}

/// Checks the data directory `dir`.
pub fn check(dir: &Path) -> Result<CheckReport, StoreError> {
    if !dir.join(crate::layout::LAYOUT_FILE).exists() && !dir.join("version").exists() {
        return Err(StoreError::Layout(format!(
            "{} is not a meshtrace data directory",
            dir.display()
        )));
    }
    let kv = FjallKv::open(dir).map_err(|e| match e {
        StoreError::Engine(fjall::Error::Locked) => StoreError::Layout(format!(
            "{} is in use by a running store: stop it before checking",
            dir.display()
        )),
        other => other,
    })?;
    let mut report = CheckReport {
        recovery: kv.recovery(),
        ..CheckReport::default()
    };
    check_journal(&mut report);
    let dict = check_dictionary(&kv, &mut report)?;
    let services = check_processes(&kv, &mut report)?;
    check_spans(&kv, &dict, &services, &mut report)?;
    check_index(&kv, &mut report)?;
    check_lists(&kv, &mut report)?;
    Ok(report)
}

fn check_journal(report: &mut CheckReport) {
    let recovery = report.recovery;
    if recovery.lost_batches > 0 {
        report.problem("journal: acknowledged batches lost", || {
            format!(
                "batches {}..={} were acknowledged but the journal ends at batch {} (truncated or emptied)",
                recovery.recovered_batch.saturating_add(1),
                recovery.recovered_batch.saturating_add(recovery.lost_batches),
                recovery.recovered_batch
            )
        });
    }
    if recovery.record == Some(AckRecord::Damaged) {
        report.problem("journal: acknowledgement record damaged", || {
            "cannot tell whether the journal lost batches".to_string()
        });
    }
}

fn check_dictionary(kv: &FjallKv, report: &mut CheckReport) -> Result<Dictionary, StoreError> {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    kv.scan(Table::Dictionary, &[], &[0xff; 5], false, &mut |k, v| {
        let id = <[u8; 4]>::try_from(k).map(u32::from_be_bytes);
        match (id, std::str::from_utf8(v)) {
            (Ok(id), Ok(text)) => entries.push((id, text.to_string())),
            _ => problems.push(format!("dictionary key {k:02x?}")),
        }
        Ok(true)
    })?;
    for _ in &entries {
        report.count(Table::Dictionary);
    }
    for p in problems {
        report.count(Table::Dictionary);
        report.problem("dictionary: entry does not decode", || p);
    }
    Ok(Dictionary::from_entries(
        entries,
        0,
        dict::DEFAULT_MAX_ENTRIES,
    ))
}

/// Every process that decodes, by hash, with its service name.
fn check_processes(
    kv: &FjallKv,
    report: &mut CheckReport,
) -> Result<HashMap<u64, Arc<meshtrace_model::Process>>, StoreError> {
    let mut processes = HashMap::new();
    let mut problems = Vec::new();
    let mut n: u64 = 0;
    kv.scan(Table::Processes, &[], &[0xff; 9], false, &mut |k, v| {
        n = n.saturating_add(1);
        let hash = <[u8; 8]>::try_from(k).map(u64::from_be_bytes);
        match (hash, codec::decode_process(v)) {
            (Ok(hash), Ok(process)) => {
                processes.insert(hash, Arc::new(process));
            }
            _ => problems.push(format!("process key {k:02x?}")),
        }
        Ok(true)
    })?;
    report.checked.insert(Table::Processes.name(), n);
    for p in problems {
        report.problem("processes: entry does not decode", || p);
    }
    Ok(processes)
}

fn check_spans(
    kv: &FjallKv,
    dict: &Dictionary,
    processes: &HashMap<u64, Arc<meshtrace_model::Process>>,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let mut n: u64 = 0;
    let mut found: Vec<(&'static str, String)> = Vec::new();
    let placeholder = Arc::new(meshtrace_model::Process::default());
    kv.scan(Table::Spans, &[], &[0xff; 33], false, &mut |k, v| {
        n = n.saturating_add(1);
        let Some((trace, start, span)) = parse_span_key(k) else {
            found.push(("spans: key does not decode", format!("{k:02x?}")));
            return Ok(true);
        };
        let at = format!("trace {trace} span {span}");
        let process = codec::span_process_hash(v)
            .ok()
            .and_then(|hash| processes.get(&hash));
        if process.is_none() {
            found.push(("spans: process missing", at.clone()));
        }
        let decoded = codec::decode_span(
            trace,
            start,
            span,
            v,
            process.cloned().unwrap_or_else(|| placeholder.clone()),
            dict,
        );
        match decoded {
            Ok((_, 0)) => {}
            Ok((_, lost)) => found.push((
                "spans: dictionary entries missing",
                format!("{at}: {lost} string(s)"),
            )),
            Err(e) => found.push(("spans: value does not decode", format!("{at}: {e}"))),
        }
        if let Some(process) = process {
            if kv
                .get(
                    Table::ByService,
                    &service_key(&process.service_name, start, trace, span),
                )?
                .is_none()
            {
                found.push(("spans: not in the service index (not searchable)", at));
            }
        }
        Ok(true)
    })?;
    report.checked.insert(Table::Spans.name(), n);
    for (kind, example) in found {
        report.problem(kind, || example);
    }
    Ok(())
}

fn check_index(kv: &FjallKv, report: &mut CheckReport) -> Result<(), StoreError> {
    let mut n: u64 = 0;
    let mut found: Vec<(&'static str, String)> = Vec::new();
    kv.scan(Table::ByService, &[], &[0xff; 9], false, &mut |k, v| {
        n = n.saturating_add(1);
        let Some((service, start, trace, span)) = parse_any_service_key(k) else {
            found.push(("by_service: key does not decode", format!("{k:02x?}")));
            return Ok(true);
        };
        let at = format!(
            "{} trace {trace} span {span}",
            String::from_utf8_lossy(service)
        );
        if codec::decode_summary(v).is_err() {
            found.push(("by_service: value does not decode", at.clone()));
        }
        let span_key = crate::keys::span_key(trace, start, span);
        if kv.get(Table::Spans, &span_key)?.is_none() {
            found.push(("by_service: entry without its span", at));
        }
        Ok(true)
    })?;
    report.checked.insert(Table::ByService.name(), n);
    for (kind, example) in found {
        report.problem(kind, || example);
    }
    Ok(())
}

fn check_lists(kv: &FjallKv, report: &mut CheckReport) -> Result<(), StoreError> {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    let mut n: u64 = 0;
    kv.scan(Table::Services, &[], &[0xff], false, &mut |k, v| {
        n = n.saturating_add(1);
        if std::str::from_utf8(k).is_err() || v.len() != 8 {
            found.push(("services: entry does not decode", format!("{k:02x?}")));
        }
        Ok(true)
    })?;
    report.checked.insert(Table::Services.name(), n);
    let mut n: u64 = 0;
    kv.scan(Table::Operations, &[], &[0xff; 9], false, &mut |k, v| {
        n = n.saturating_add(1);
        if parse_operation_key(k).is_none() || v.len() != 8 {
            found.push(("operations: entry does not decode", format!("{k:02x?}")));
        }
        Ok(true)
    })?;
    report.checked.insert(Table::Operations.name(), n);
    for (kind, example) in found {
        report.problem(kind, || example);
    }
    Ok(())
}
