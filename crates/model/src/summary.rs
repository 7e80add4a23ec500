//! A trace in a few facts every reader of it shares: when it starts and ends, and which span is
//! its root. The console's trace lists and the store's api_v3 trace summaries both build on
//! these, so a trace has one root and one duration wherever it is shown.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

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
mod tests {
    use std::sync::Arc;

    use crate::{Process, RefType, Span, SpanId, SpanRef, Trace, TraceId};

    fn span(id: u64, refs: &[(RefType, u128, u64)], start: u64, duration: u64) -> Span {
        Span {
            trace_id: TraceId(7),
            span_id: SpanId(id),
            operation_name: format!("op{id}"),
            references: refs
                .iter()
                .map(|&(ref_type, trace, span)| SpanRef {
                    ref_type,
                    trace_id: TraceId(trace),
                    span_id: SpanId(span),
                })
                .collect(),
            flags: 1,
            start_time: start,
            duration,
            tags: vec![],
            logs: vec![],
            process: Arc::new(Process::default()),
            warnings: vec![],
        }
    }

    fn trace(spans: Vec<Span>) -> Trace {
        Trace {
            spans,
            warnings: vec![],
        }
    }

    fn root_id(trace: &Trace) -> Option<u64> {
        trace.root().map(|s| s.span_id.0)
    }

    const CHILD: RefType = RefType::ChildOf;
    const FOLLOWS: RefType = RefType::FollowsFrom;

    #[test]
    fn bounds_run_from_the_first_start_to_the_last_end() {
        let t = trace(vec![
            span(2, &[(CHILD, 7, 1)], 1_010, 500),
            span(1, &[], 1_000, 100),
            span(3, &[(CHILD, 7, 1)], 1_200, 50),
        ]);
        assert_eq!(t.bounds(), (1_000, 1_510));
        assert_eq!(t.duration(), 510);
        assert_eq!(trace(vec![]).bounds(), (0, 0));
        assert_eq!(trace(vec![]).duration(), 0);
        // A hand-built span may end past u64: the end saturates.
        let far = trace(vec![span(1, &[], u64::MAX - 5, 10)]);
        assert_eq!(far.bounds(), (u64::MAX - 5, u64::MAX));
    }

    #[test]
    fn the_root_is_the_span_without_a_parent() {
        let t = trace(vec![
            span(2, &[(CHILD, 7, 1)], 1_000, 10),
            span(1, &[], 1_005, 100),
            span(3, &[(CHILD, 7, 2)], 1_001, 5),
        ]);
        assert_eq!(root_id(&t), Some(1));
        assert_eq!(root_id(&trace(vec![])), None);
    }

    #[test]
    fn a_trace_missing_its_root_is_named_after_its_earliest_orphan() {
        let t = trace(vec![
            span(2, &[(CHILD, 7, 1)], 1_020, 10),
            span(3, &[(CHILD, 7, 1)], 1_010, 10),
            span(4, &[(CHILD, 7, 3)], 1_000, 5),
        ]);
        assert_eq!(root_id(&t), Some(3));
    }

    #[test]
    fn a_span_without_references_wins_over_an_earlier_orphan() {
        let t = trace(vec![
            span(2, &[(CHILD, 7, 99)], 1_000, 10),
            span(1, &[], 1_005, 100),
        ]);
        assert_eq!(root_id(&t), Some(1));
    }

    #[test]
    fn any_reference_to_a_span_of_the_trace_makes_a_child() {
        // FOLLOWS_FROM counts, as in the Jaeger UI; a reference into another trace does not.
        let t = trace(vec![
            span(1, &[(FOLLOWS, 7, 2)], 1_000, 10),
            span(2, &[(CHILD, 8, 1)], 1_005, 10),
        ]);
        assert_eq!(root_id(&t), Some(2));
        // Every span points at another: no root.
        let cycle = trace(vec![
            span(1, &[(CHILD, 7, 2)], 1_000, 10),
            span(2, &[(CHILD, 7, 1)], 1_000, 10),
        ]);
        assert_eq!(root_id(&cycle), None);
    }

    #[test]
    fn ties_go_to_the_first_span() {
        let t = trace(vec![
            span(5, &[(CHILD, 7, 98)], 1_000, 10),
            span(6, &[(CHILD, 7, 99)], 1_000, 10),
        ]);
        assert_eq!(root_id(&t), Some(5));
    }
}
