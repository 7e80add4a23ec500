//! A trace in a few facts every reader of it shares: when it starts and ends, and which span is
//! its root. The console's trace lists and the store's api_v3 trace summaries both build on
//! these, so a trace has one root and one duration wherever it is shown.

use std::collections::HashSet;

use crate::ids::SpanId;
use crate::span::{Span, Trace};

impl Trace {
    /// When the trace starts and ends, µs since the epoch: its earliest span start and its
    /// latest span end; `(0, 0)` for a trace without spans.
    pub fn bounds(&self) -> (u64, u64) {
        let start = self.spans.iter().map(|s| s.start_time).min().unwrap_or(0);
        let end = self.spans.iter().map(Span::end_time).max().unwrap_or(start);
        (start, end)
    }

    /// µs from the trace's earliest span start to its latest span end.
    pub fn duration(&self) -> u64 {
        let (start, end) = self.bounds();
        end.saturating_sub(start)
    }

    /// The root span, by the Jaeger UI's rule (the span its trace is named after): a span with
    /// no reference, in its own trace, to a span of this trace; of several, the one with the
    /// fewest references, then the earliest start, then the first. So a trace whose root has
    /// not arrived is named after its earliest orphan. `None` only when every span points at
    /// another (or there are none).
    pub fn root(&self) -> Option<&Span> {
        let ids: HashSet<SpanId> = self.spans.iter().map(|s| s.span_id).collect();
        self.spans
            .iter()
            .filter(|s| {
                !s.references
                    .iter()
                    .any(|r| r.trace_id == s.trace_id && ids.contains(&r.span_id))
            })
            .min_by_key(|s| (s.references.len(), s.start_time))
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use serde_json::{Value, json};

    use crate::Trace;
    use crate::jaeger_json::trace_from_json_owned;

    /// A span as (ID, references as (type, trace ID, span ID), start µs, duration µs).
    type SpanSpec<'a> = (u64, &'a [(&'a str, u128, u64)], u64, u64);

    /// A trace of ID 7, written as the Jaeger UI's JSON and read into the model.
    fn trace(spans: &[SpanSpec]) -> Trace {
        let spans: Vec<Value> = spans
            .iter()
            .map(|(id, refs, start, duration)| {
                let refs: Vec<Value> = refs
                    .iter()
                    .map(|(kind, trace, span)| {
                        json!({"refType": kind, "traceID": format!("{trace:032x}"),
                               "spanID": format!("{span:016x}")})
                    })
                    .collect();
                json!({"traceID": format!("{:032x}", 7), "spanID": format!("{id:016x}"),
                       "operationName": format!("op{id}"), "references": refs,
                       "startTime": start, "duration": duration, "processID": "p1"})
            })
            .collect();
        let json = json!({"traceID": format!("{:032x}", 7), "spans": spans,
                          "processes": {"p1": {"serviceName": "svc", "tags": []}}});
        trace_from_json_owned(serde_json::from_value(json).unwrap()).unwrap()
    }

    const CHILD: &str = "CHILD_OF";
    const FOLLOWS: &str = "FOLLOWS_FROM";

    #[test]
    fn bounds_run_from_the_first_start_to_the_last_end() {
        let t = trace(&[
            (2, &[(CHILD, 7, 1)], 1_010, 500),
            (1, &[], 1_000, 100),
            (3, &[(CHILD, 7, 1)], 1_200, 50),
        ]);
        assert_eq!(t.bounds(), (1_000, 1_510));
        assert_eq!(t.duration(), 510);
        assert_eq!(trace(&[]).bounds(), (0, 0));
        assert_eq!(trace(&[]).duration(), 0);
        // A hand-built span may end past u64: the end saturates.
        let mut far = trace(&[(1, &[], 0, 10)]);
        far.spans[0].start_time = u64::MAX - 5;
        assert_eq!(far.bounds(), (u64::MAX - 5, u64::MAX));
    }

    #[test]
    fn the_root_is_the_span_the_jaeger_ui_names_the_trace_after() {
        let cases: [(&str, &[SpanSpec], Option<u64>); 7] = [
            (
                "the span without a parent, however late it starts",
                &[
                    (2, &[(CHILD, 7, 1)], 1_000, 10),
                    (1, &[], 1_005, 100),
                    (3, &[(CHILD, 7, 2)], 1_001, 5),
                ],
                Some(1),
            ),
            ("none without spans", &[], None),
            (
                "a trace missing its root: the earliest orphan",
                &[
                    (2, &[(CHILD, 7, 1)], 1_020, 10),
                    (3, &[(CHILD, 7, 1)], 1_010, 10),
                    (4, &[(CHILD, 7, 3)], 1_000, 5),
                ],
                Some(3),
            ),
            (
                "fewer references first: a span without any beats an earlier orphan",
                &[(2, &[(CHILD, 7, 99)], 1_000, 10), (1, &[], 1_005, 100)],
                Some(1),
            ),
            (
                "FOLLOWS_FROM into the trace makes a child; a reference into another trace does not",
                &[
                    (1, &[(FOLLOWS, 7, 2)], 1_000, 10),
                    (2, &[(CHILD, 8, 1)], 1_005, 10),
                ],
                Some(2),
            ),
            (
                "every span points at another: no root",
                &[
                    (1, &[(CHILD, 7, 2)], 1_000, 10),
                    (2, &[(CHILD, 7, 1)], 1_000, 10),
                ],
                None,
            ),
            (
                "ties go to the first span",
                &[
                    (5, &[(CHILD, 7, 98)], 1_000, 10),
                    (6, &[(CHILD, 7, 99)], 1_000, 10),
                ],
                Some(5),
            ),
        ];
        for (why, spans, root) in cases {
            assert_eq!(trace(spans).root().map(|s| s.span_id.0), root, "{why}");
        }
    }
}
