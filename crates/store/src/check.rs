//! `meshtrace store --check`: verifies a data directory offline and says what is damaged —
//! acknowledged batches the journal lost, keys and values that do not decode, spans whose
//! process or dictionary strings are missing, spans without their index entry and index
//! entries without their span. It opens the directory as the store does (so the store must be
//! stopped: the engine locks it, and truncates a damaged journal tail as a start would) and
//! writes nothing of its own.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::codec;
use crate::dict::Dictionary;
use crate::engine::stored_span;
use crate::keys::{
    Filed, ServiceEntry, SpanAt, parse_any_service_key, parse_any_service_slice_key,
    parse_any_slice_key, parse_arrival_key, parse_operation_key, parse_span_key,
    parse_trace_arrival_key, service_key, service_slice_key, slice_key, trace_arrival_key,
};
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
    pub problems: BTreeMap<String, (u64, Vec<String>)>,
    pub recovery: Recovery,
}

impl CheckReport {
    pub fn is_damaged(&self) -> bool {
        !self.problems.is_empty()
    }

    fn problem(&mut self, kind: impl Into<String>, example: impl FnOnce() -> String) {
        let entry = self.problems.entry(kind.into()).or_default();
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
    check_spans(&kv, &dict, &services, Table::Spans, &mut report)?;
    check_spans(&kv, &dict, &services, Table::SpansByArrival, &mut report)?;
    check_index(&kv, &mut report)?;
    check_slice_index(&kv, &mut report)?;
    check_trace_arrivals(&kv, &mut report)?;
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

/// Reads every entry of `table` (keys below `to`), counts them in the report, and lets `visit`
/// record what is wrong with each as it goes: only a few examples of each kind are kept, so a
/// badly damaged table costs no more memory to check than a sound one.
fn check_table(
    kv: &FjallKv,
    table: Table,
    to: &[u8],
    report: &mut CheckReport,
    mut visit: impl FnMut(&[u8], &[u8], &mut CheckReport) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    // An empty table is reported as such ("0 entries checked").
    report.checked.entry(table.name()).or_insert(0);
    kv.scan(table, &[], to, false, &mut |k, v| {
        report.count(table);
        visit(k, v, report)?;
        Ok(true)
    })
}

/// Every process that decodes, by hash, with its service name.
fn check_processes(
    kv: &FjallKv,
    report: &mut CheckReport,
) -> Result<HashMap<u64, Arc<meshtrace_model::Process>>, StoreError> {
    let mut processes = HashMap::new();
    check_table(kv, Table::Processes, &[0xff; 9], report, |k, v, report| {
        let hash = <[u8; 8]>::try_from(k).map(u64::from_be_bytes);
        match (hash, codec::decode_process(v)) {
            (Ok(hash), Ok(process)) => {
                processes.insert(hash, Arc::new(process));
            }
            _ => report.problem("processes: entry does not decode", || {
                format!("process key {k:02x?}")
            }),
        }
        Ok(())
    })?;
    Ok(processes)
}

/// The spans of `table` (the trace-keyed one of layouts 2 to 4, or the arrival-ordered one,
/// whose entries are single spans or groups of them).
fn check_spans(
    kv: &FjallKv,
    dict: &Dictionary,
    processes: &HashMap<u64, Arc<meshtrace_model::Process>>,
    table: Table,
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let spans = SpanCheck {
        kv,
        dict,
        processes,
        placeholder: Arc::new(meshtrace_model::Process::default()),
        table,
    };
    check_table(kv, table, &[0xff; 37], report, |k, v, report| {
        let parsed = match table {
            Table::Spans => parse_span_key(k).map(|(trace, start, span)| {
                (
                    trace,
                    SpanAt::Keyed,
                    Filed::Span {
                        start,
                        span_id: span,
                    },
                )
            }),
            _ => parse_arrival_key(k).map(|(second, trace, filed)| {
                let at = match filed {
                    Filed::Span { .. } => SpanAt::Arrived(second),
                    Filed::Group { id } => SpanAt::InGroup { second, group: id },
                };
                (trace, at, filed)
            }),
        };
        let Some((trace, at, filed)) = parsed else {
            report.problem(spans.problem("key does not decode"), || format!("{k:02x?}"));
            return Ok(());
        };
        if let Filed::Span { start, span_id } = filed {
            return spans.check((start, trace, span_id, at), v, report);
        }
        for member in codec::group_members(v) {
            match member {
                Ok((start, span_id, encoded)) => {
                    spans.check((start, trace, span_id, at), encoded, report)?;
                }
                Err(e) => report.problem(spans.problem("group does not decode"), || {
                    format!("trace {trace} group {k:02x?}: {e}")
                }),
            }
        }
        Ok(())
    })
}

/// What checking one span needs.
struct SpanCheck<'a> {
    kv: &'a FjallKv,
    dict: &'a Dictionary,
    processes: &'a HashMap<u64, Arc<meshtrace_model::Process>>,
    placeholder: Arc<meshtrace_model::Process>,
    table: Table,
}

impl SpanCheck<'_> {
    fn problem(&self, what: &str) -> String {
        format!("{}: {what}", self.table.name())
    }

    /// One span: it decodes with its process and strings, it is in a service index, and an
    /// arrival-ordered one is noted in `trace_arrivals`.
    fn check(
        &self,
        (start, trace, span, at): ServiceEntry,
        value: &[u8],
        report: &mut CheckReport,
    ) -> Result<(), StoreError> {
        let kv = self.kv;
        let at_text = || format!("trace {trace} span {span}");
        let process = codec::span_process_hash(value)
            .ok()
            .and_then(|hash| self.processes.get(&hash));
        if process.is_none() {
            report.problem(self.problem("process missing"), at_text);
        }
        let decoded = codec::decode_span(
            trace,
            start,
            span,
            value,
            process.cloned().unwrap_or_else(|| self.placeholder.clone()),
            self.dict,
        );
        match decoded {
            Ok((_, 0)) => {}
            Ok((_, lost)) => report.problem(self.problem("dictionary entries missing"), || {
                format!("{}: {lost} string(s)", at_text())
            }),
            Err(e) => report.problem(self.problem("value does not decode"), || {
                format!("{}: {e}", at_text())
            }),
        }
        if let Some(process) = process {
            // Layouts 6 and 7 index a span in `by_slice`; layouts 2 to 5 in `by_service`.
            let service = &process.service_name;
            let in_slices = match at {
                SpanAt::Keyed => false,
                _ => kv
                    .get(Table::BySlice, &slice_key(service, start, trace, span, at))?
                    .is_some(),
            };
            let indexed = service_key(service, start, trace, span, at);
            if !in_slices && kv.get(Table::ByService, &indexed)?.is_none() {
                report.problem(
                    self.problem("not in the service index (not searchable)"),
                    at_text,
                );
            }
        }
        if let Some(second) = at.second()
            && kv
                .get(Table::TraceArrivals, &trace_arrival_key(trace, second))?
                .is_none()
        {
            report.problem(
                self.problem("not in trace_arrivals (not found by trace ID)"),
                at_text,
            );
        }
        Ok(())
    }
}

fn check_index(kv: &FjallKv, report: &mut CheckReport) -> Result<(), StoreError> {
    check_table(kv, Table::ByService, &[0xff; 9], report, |k, v, report| {
        let Some((service, entry)) = parse_any_service_key(k) else {
            report.problem("by_service: key does not decode", || format!("{k:02x?}"));
            return Ok(());
        };
        check_index_entry(kv, Table::ByService, service, entry, v, report)
    })
}

/// `by_slice` (layout 6): each entry as `by_service`'s, and its slice listed for its service.
fn check_slice_index(kv: &FjallKv, report: &mut CheckReport) -> Result<(), StoreError> {
    check_table(kv, Table::BySlice, &[0xff; 16], report, |k, v, report| {
        let Some((slice, service, entry)) = parse_any_slice_key(k) else {
            report.problem("by_slice: key does not decode", || format!("{k:02x?}"));
            return Ok(());
        };
        check_index_entry(kv, Table::BySlice, service, entry, v, report)?;
        let listed = match std::str::from_utf8(service) {
            Ok(name) => kv
                .get(Table::ServiceSlices, &service_slice_key(name, slice))?
                .is_some(),
            Err(_) => false, // no span names such a service
        };
        if !listed {
            report.problem(
                "by_slice: slice not listed in service_slices (not searchable)",
                || format!("{} slice {slice}", String::from_utf8_lossy(service)),
            );
        }
        Ok(())
    })?;
    check_keys(kv, Table::ServiceSlices, &[0xff; 9], report, |k| {
        parse_any_service_slice_key(k).is_some()
    })
}

/// One entry of a service index: its value decodes and its span is stored.
fn check_index_entry(
    kv: &FjallKv,
    table: Table,
    service: &[u8],
    (start, trace, span, at): ServiceEntry,
    value: &[u8],
    report: &mut CheckReport,
) -> Result<(), StoreError> {
    let at_text = || {
        format!(
            "{} trace {trace} span {span}",
            String::from_utf8_lossy(service)
        )
    };
    let name = table.name();
    if codec::decode_summary(value).is_err() {
        report.problem(format!("{name}: value does not decode"), at_text);
    }
    if stored_span(kv, (start, trace, span, at))?.is_none() {
        report.problem(format!("{name}: entry without its span"), at_text);
    }
    Ok(())
}

fn check_trace_arrivals(kv: &FjallKv, report: &mut CheckReport) -> Result<(), StoreError> {
    check_keys(kv, Table::TraceArrivals, &[0xff; 21], report, |k| {
        parse_trace_arrival_key(k).is_some()
    })
}

/// A table of keys alone (below `to`), each of which must be one `decodes` accepts.
fn check_keys(
    kv: &FjallKv,
    table: Table,
    to: &[u8],
    report: &mut CheckReport,
    decodes: impl Fn(&[u8]) -> bool,
) -> Result<(), StoreError> {
    check_table(kv, table, to, report, |k, _, report| {
        if !decodes(k) {
            report.problem(format!("{}: key does not decode", table.name()), || {
                format!("{k:02x?}")
            });
        }
        Ok(())
    })
}

fn check_lists(kv: &FjallKv, report: &mut CheckReport) -> Result<(), StoreError> {
    check_table(kv, Table::Services, &[0xff], report, |k, v, report| {
        if std::str::from_utf8(k).is_err() || v.len() != 8 {
            report.problem("services: entry does not decode", || format!("{k:02x?}"));
        }
        Ok(())
    })?;
    check_table(kv, Table::Operations, &[0xff; 9], report, |k, v, report| {
        if parse_operation_key(k).is_none() || v.len() != 8 {
            report.problem("operations: entry does not decode", || format!("{k:02x?}"));
        }
        Ok(())
    })
}
