//! The trace timeline page (`/console/traces/{traceID}`): a waterfall of the whole trace that
//! stays fast at 100,000 spans. The server sends the trace once, compactly, in tree order with
//! each subtree's extent and the critical path worked out; the page's script draws only the
//! rows in view (and skips collapsed subtrees), plus a minimap, a time ruler and a search.
//! A span's tags and logs are fetched when its row is opened.

use std::collections::HashMap;
use std::fmt::Write as _;

use meshtrace_model::{Span, Trace};

use super::spans::tree_order;

/// Bits of a span's flags in the timeline data.
pub const ERROR: u8 = 1;
pub const CRITICAL: u8 = 2;
pub const SERVER: u8 = 4;
pub const CLIENT: u8 = 8;

/// The timeline's data as JSON, written by hand: it is the one answer that reaches megabytes.
///
/// `{"traceID", "start", "duration", "services": [..], "operations": [..],
///   "spans": [[spanID, parent, depth, end, offset, duration, service, operation, flags], ..]}`
/// with spans in tree order; `parent` is an index (-1 for a root), `end` the index after the
/// span's subtree, `offset` µs from the trace's start.
pub fn data(trace: &Trace) -> String {
    let ordered = tree_order(trace);
    let n = ordered.len();
    let (start, finish) = trace.bounds();
    let index: HashMap<_, _> = ordered
        .iter()
        .enumerate()
        .map(|(i, (_, s))| (s.span_id, i))
        .collect();
    // A parent comes before its children in tree order.
    let parent: Vec<Option<usize>> = ordered
        .iter()
        .enumerate()
        .map(|(i, (_, s))| {
            s.parent_span_id()
                .and_then(|p| index.get(&p))
                .copied()
                .filter(|&p| p < i)
        })
        .collect();
    // Subtree extents: in tree order a subtree is contiguous; walk back, each span's end is the
    // furthest end of its children.
    let mut end: Vec<usize> = (1..=n).collect();
    for (i, up) in parent.iter().enumerate().rev() {
        let child_end = end.get(i).copied().unwrap_or_default();
        if let Some(parent_end) = up.and_then(|p| end.get_mut(p)) {
            *parent_end = (*parent_end).max(child_end);
        }
    }
    let critical = critical_path(&ordered, &parent);

    let mut services: Vec<&str> = Vec::new();
    let mut service_index: HashMap<&str, usize> = HashMap::new();
    let mut operations: Vec<&str> = Vec::new();
    let mut operation_index: HashMap<&str, usize> = HashMap::new();
    let mut out = String::with_capacity(n.saturating_mul(72).saturating_add(64));
    let _ = write!(
        out,
        "{{\"traceID\":\"{}\",\"start\":{start},\"duration\":{},\"spans\":[",
        trace
            .trace_id()
            .map(meshtrace_model::TraceId::to_hex32)
            .unwrap_or_default(),
        finish.saturating_sub(start)
    );
    for (i, (depth, span)) in ordered.iter().enumerate() {
        let service = intern(
            &span.process.service_name,
            &mut services,
            &mut service_index,
        );
        let operation = intern(&span.operation_name, &mut operations, &mut operation_index);
        let mut flags = 0u8;
        if span.has_error() {
            flags |= ERROR;
        }
        if critical.get(i).copied().unwrap_or_default() {
            flags |= CRITICAL;
        }
        match span.kind() {
            "server" | "consumer" => flags |= SERVER,
            "client" | "producer" => flags |= CLIENT,
            _ => {}
        }
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "[\"{}\",{},{depth},{},{},{},{service},{operation},{flags}]",
            span.span_id,
            parent.get(i).copied().flatten().map_or(-1, |p| p as i64),
            end.get(i).copied().unwrap_or_default(),
            span.start_time.saturating_sub(start),
            span.duration
        );
    }
    out.push_str("],\"services\":");
    out.push_str(&serde_json::to_string(&services).unwrap_or_default());
    out.push_str(",\"operations\":");
    out.push_str(&serde_json::to_string(&operations).unwrap_or_default());
    out.push('}');
    out
}

fn intern<'a>(
    name: &'a str,
    list: &mut Vec<&'a str>,
    index: &mut HashMap<&'a str, usize>,
) -> usize {
    *index.entry(name).or_insert_with(|| {
        list.push(name);
        list.len().saturating_sub(1)
    })
}

/// The critical path: from each root, the child that finishes last, down to a leaf — the chain
/// of spans that decided when the trace ended.
fn critical_path(ordered: &[(usize, &Span)], parent: &[Option<usize>]) -> Vec<bool> {
    let n = ordered.len();
    let ends = |j: usize| {
        ordered
            .get(j)
            .map_or(0, |(_, s)| s.start_time.saturating_add(s.duration))
    };
    let mut last_child: Vec<Option<usize>> = vec![None; n];
    for (i, up) in parent.iter().enumerate() {
        if let Some(last) = up.and_then(|p| last_child.get_mut(p))
            && last.is_none_or(|c| ends(i) > ends(c))
        {
            *last = Some(i);
        }
    }
    let mut on = vec![false; n];
    // The root that finishes last, then its last-finishing child, and so on (a child's index
    // is always past its parent's, so the walk ends).
    let mut current = parent
        .iter()
        .enumerate()
        .filter(|(_, up)| up.is_none())
        .map(|(i, _)| i)
        .max_by_key(|&i| ends(i));
    while let Some(i) = current {
        let Some(flag) = on.get_mut(i) else { break };
        *flag = true;
        current = last_child.get(i).copied().flatten();
    }
    on
}

/// One span's details for the timeline's side panel.
pub fn span_json(span: &Span, trace_start: u64) -> serde_json::Value {
    let info = meshtrace_mesh::span_info(span);
    let text = |kvs: &[meshtrace_model::KeyValue]| -> Vec<[String; 2]> {
        kvs.iter()
            .map(|kv| [kv.key.clone(), kv.value.as_text().into_owned()])
            .collect()
    };
    serde_json::json!({
        "spanID": span.span_id.to_string(),
        "operation": span.operation_name,
        "service": span.process.service_name,
        "offset": span.start_time.saturating_sub(trace_start),
        "duration": span.duration,
        "tags": text(&span.tags),
        "process": text(&span.process.tags),
        "logs": span.logs.iter().map(|l| serde_json::json!({
            "offset": l.timestamp.saturating_sub(trace_start),
            "fields": text(&l.fields),
        })).collect::<Vec<_>>(),
        "mesh": info,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use meshtrace_model::{Process, RefType, SpanId, SpanRef, TraceId};

    use super::*;

    fn span(id: u64, parent: Option<u64>, start: u64, duration: u64) -> Span {
        Span {
            trace_id: TraceId(1),
            span_id: SpanId(id),
            operation_name: format!("op{id}"),
            references: parent
                .map(|p| SpanRef {
                    ref_type: RefType::ChildOf,
                    trace_id: TraceId(1),
                    span_id: SpanId(p),
                })
                .into_iter()
                .collect(),
            flags: 1,
            start_time: start,
            duration,
            tags: vec![],
            logs: vec![],
            process: Arc::new(Process {
                service_name: "svc".into(),
                tags: vec![],
            }),
            warnings: vec![],
        }
    }

    #[test]
    fn tree_order_extents_and_the_critical_path() {
        // 1 ─┬─ 2 ── 4
        //    └─ 3          (3 ends last among 1's children)
        let trace = Trace {
            spans: vec![
                span(3, Some(1), 150, 100),
                span(4, Some(2), 120, 10),
                span(1, None, 100, 200),
                span(2, Some(1), 110, 30),
            ],
            warnings: vec![],
        };
        let json: serde_json::Value = serde_json::from_str(&data(&trace)).unwrap();
        assert_eq!(json["start"], 100);
        assert_eq!(json["duration"], 200);
        let rows: Vec<(String, i64, u64, u64, u64)> = json["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap().to_string(),
                    r[1].as_i64().unwrap(),
                    r[2].as_u64().unwrap(),
                    r[3].as_u64().unwrap(),
                    r[8].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("0000000000000001".into(), -1, 0, 4, CRITICAL as u64),
                ("0000000000000002".into(), 0, 1, 3, 0),
                ("0000000000000004".into(), 1, 2, 3, 0),
                ("0000000000000003".into(), 0, 1, 4, CRITICAL as u64),
            ]
        );
        assert_eq!(json["spans"][3][4], 50);
    }
}
