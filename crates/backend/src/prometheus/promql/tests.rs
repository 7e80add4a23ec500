//! Rendering: names checked, values escaped, the scope in every selector, numbers and
//! durations as PromQL reads them.

use std::time::Duration;

use super::*;

fn label(name: &str) -> LabelName {
    LabelName::new(name).unwrap()
}

#[test]
fn names_are_checked() {
    for good in ["a", "_", "destination_workload", "A9_"] {
        LabelName::new(good).unwrap();
    }
    for bad in ["", "9a", "a-b", "a b", "é", "a\"", "a}"] {
        let e = LabelName::new(bad).unwrap_err().to_string();
        assert!(e.contains("is not a label name"), "{e}");
    }
    MetricName::new("job:istio_requests:rate5m").unwrap();
    assert!(MetricName::new("a{b}").is_err());
    assert!(LabelName::new("a:b").is_err());
    assert!(LabelName::new(&"a".repeat(MAX_NAME + 1)).is_err());
    // The message shows the name escaped: no raw newline reaches a log line.
    let e = LabelName::new("a\nb").unwrap_err().to_string();
    assert!(e.starts_with("\"a\\nb\" is not"), "{e}");
}

#[test]
fn kiali_shaped_queries_render_with_the_scope_in_every_selector() {
    let sel = |m: &str| {
        Selector::metric(m)
            .unwrap()
            .eq("reporter", "destination")
            .unwrap()
            .eq("destination_service_namespace", "bookinfo")
            .unwrap()
    };
    let rate = |m: &str| {
        Expr::call(
            Function::Rate,
            vec![Expr::range(sel(m), Duration::from_secs(60)).unwrap()],
        )
    };
    let by = Grouping::By(vec![label("destination_workload")]);
    let avg = Expr::binary(
        BinaryOp::Div,
        Expr::aggregate(
            Aggregation::Sum,
            by.clone(),
            rate("istio_request_duration_milliseconds_sum"),
        ),
        Expr::aggregate(
            Aggregation::Sum,
            by,
            rate("istio_request_duration_milliseconds_count"),
        ),
    );
    let query = Expr::binary(BinaryOp::Gt, avg, Expr::Number(0.0));
    let scope = [Matcher::new("mesh_id", MatchOp::Equal, "mesh-1").unwrap()];
    assert_eq!(
        query.render(&scope),
        "(sum by (destination_workload) (rate(istio_request_duration_milliseconds_sum{\
         reporter=\"destination\",destination_service_namespace=\"bookinfo\",mesh_id=\"mesh-1\"}[60s])) \
         / sum by (destination_workload) (rate(istio_request_duration_milliseconds_count{\
         reporter=\"destination\",destination_service_namespace=\"bookinfo\",mesh_id=\"mesh-1\"}[60s]))) > 0.0"
    );
    assert_eq!(
        query.to_string().matches("mesh_id").count(),
        0,
        "Display has no scope"
    );
}

#[test]
fn hostile_values_stay_inside_their_literal() {
    let selector = Selector::metric("up")
        .unwrap()
        .eq("v", "\"} or up{")
        .unwrap()
        .eq("w", "a\\\"b\nc\u{0}\u{7f}\t")
        .unwrap();
    assert_eq!(
        selector.render(&[]),
        r#"up{v="\"} or up{",w="a\\\"b\nc\u0000\u007f\t"}"#
    );
}

#[test]
fn numbers_durations_modifiers_and_parameters() {
    let up = || Expr::vector(Selector::metric("up").unwrap());
    let cases = [
        (Expr::Number(f64::NAN), "NaN"),
        (Expr::Number(f64::NEG_INFINITY), "-Inf"),
        (Expr::Number(1e-7), "1e-7"),
        (Expr::Number(0.001), "0.001"),
        (
            Expr::binary(BinaryOp::Pow, Expr::Number(-2.0), Expr::Number(2.0)),
            "(-2.0) ^ 2.0",
        ),
        (
            Expr::range(Selector::metric("up").unwrap(), Duration::from_millis(1500)).unwrap(),
            "up{}[1500ms]",
        ),
        (
            Expr::aggregate(
                Aggregation::Max,
                Grouping::Without(vec![label("instance")]),
                up(),
            ),
            "max without (instance) (up{})",
        ),
        (
            Expr::Binary {
                op: BinaryOp::Gt,
                lhs: Box::new(up()),
                rhs: Box::new(up()),
                return_bool: true,
                matching: Some(VectorMatching {
                    on: false,
                    labels: vec![label("code")],
                    group: Some((true, vec![label("pod")])),
                }),
            },
            "up{} > bool ignoring (code) group_left (pod) up{}",
        ),
        (
            Expr::call(Function::Round, vec![up(), Expr::Number(0.001)]),
            "round(up{}, 0.001)",
        ),
    ];
    for (expr, text) in cases {
        assert_eq!(expr.to_string(), text);
    }
    assert!(Expr::range(Selector::metric("up").unwrap(), Duration::from_micros(999)).is_err());
}

#[test]
fn regex_literals_escape_re2_metacharacters() {
    assert_eq!(
        regex_literal("reviews.bookinfo(v1)|*"),
        r"reviews\.bookinfo\(v1\)\|\*"
    );
}

/// The matchers of the one vector selector in `query`, as promql-parser (the parser of
/// meshtrace's own engine, a port of Prometheus's) reads them back.
fn parsed_matchers(query: &str) -> Vec<(String, String)> {
    match promql_parser::parser::parse(query) {
        Ok(promql_parser::parser::Expr::VectorSelector(vs)) => vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name != "__name__")
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect(),
        other => panic!("{query} parsed as {other:?}"),
    }
}

proptest::proptest! {
    /// Any text as a value — quotes, backslashes, newlines, control characters, any Unicode —
    /// is read back by a PromQL parser as exactly that text, in its own matcher, the scope's
    /// matcher after it untouched.
    #[test]
    fn any_value_is_read_back_unchanged(value in "\\PC*|[\"\\\\\n\r\t\u{0}-\u{1f}\u{7f}{}=~,a]*") {
        let scope = [Matcher::new("mesh", MatchOp::Equal, "m\"1").unwrap()];
        let query = Selector::metric("up")
            .unwrap()
            .eq("v", value.clone())
            .unwrap()
            .render(&scope);
        proptest::prop_assert_eq!(
            parsed_matchers(&query),
            vec![
                ("v".to_string(), value),
                ("mesh".to_string(), "m\"1".to_string()),
            ]
        );
    }
}
