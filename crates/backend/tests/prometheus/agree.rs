//! The same client, the same queries, two servers: a real Prometheus started over promtool
//! blocks of the samples, and meshtrace's own `/prometheus` API over a `MemorySource` of the
//! same samples. The typed answers must agree, and match the values worked out by hand from
//! the samples' construction. Hostile label values select exactly their series on both.

use std::time::Duration;

use meshtrace_backend::prometheus::promql::{
    Aggregation, BinaryOp, Function, Grouping, LabelName, regex_literal,
};
use meshtrace_backend::prometheus::{
    Answer, ErrorKind, Expr, PrometheusClient, PrometheusOptions, Selector, Value,
};
use meshtrace_testkit::prometheus::RealPrometheus;

use crate::support::{
    EVERY, HOSTILE, Ours, REQUESTS, at, client, client_with, difference, openmetrics,
};

fn requests() -> Selector {
    Selector::metric("istio_requests_total").unwrap()
}

fn rate(selector: Selector, seconds: u64) -> Expr {
    Expr::call(
        Function::Rate,
        vec![Expr::range(selector, Duration::from_secs(seconds)).unwrap()],
    )
}

fn by(labels: &[&str]) -> Grouping {
    Grouping::By(labels.iter().map(|l| LabelName::new(l).unwrap()).collect())
}

/// Queries of the shapes the console sends, and the result types and edge values.
fn table() -> Vec<Expr> {
    let reviews = || requests().eq("destination_workload", "reviews-v1").unwrap();
    vec![
        Expr::vector(requests().eq("response_code", "200").unwrap()),
        Expr::aggregate(
            Aggregation::Sum,
            by(&["mesh_id", "destination_workload"]),
            rate(requests(), 60),
        ),
        Expr::binary(
            BinaryOp::Gt,
            Expr::aggregate(
                Aggregation::Sum,
                by(&["response_code"]),
                rate(reviews(), 60),
            ),
            Expr::Number(0.0),
        ),
        Expr::binary(
            BinaryOp::Div,
            Expr::aggregate(
                Aggregation::Sum,
                Grouping::None,
                rate(reviews().re("response_code", "5..").unwrap(), 120),
            ),
            Expr::aggregate(Aggregation::Sum, Grouping::None, rate(reviews(), 120)),
        ),
        Expr::call(
            Function::Round,
            vec![
                Expr::aggregate(Aggregation::Sum, Grouping::None, rate(requests(), 60)),
                Expr::Number(0.001),
            ],
        ),
        Expr::vector(Selector::metric("edge_gauge").unwrap()),
        Expr::binary(
            BinaryOp::Mul,
            Expr::vector(Selector::metric("edge_gauge").unwrap()),
            Expr::Number(-1e300),
        ),
        Expr::Number(1.5),
        Expr::binary(BinaryOp::Sub, Expr::Number(2.0), Expr::Number(0.5)),
        Expr::String("a \"string\"\n".to_string()),
        Expr::vector(Selector::metric("no_such_metric").unwrap()),
    ]
}

async fn answers(client: &PrometheusClient) -> Vec<Answer> {
    let mut all = Vec::new();
    for expr in table() {
        for t in [300, 600, 1200] {
            let answer = client.query(&expr, Some(at(t))).await;
            all.push(answer.unwrap_or_else(|e| panic!("{e}")));
        }
        if !matches!(expr, Expr::String(_)) {
            let answer = client
                .query_range(&expr, at(0), at(600), Duration::from_secs(30))
                .await;
            all.push(answer.unwrap_or_else(|e| panic!("{e}")));
        }
    }
    all
}

/// The rate of every series of (mesh, workload), from the table of increments.
fn expected_rate(mesh: &str, workload: &str) -> f64 {
    REQUESTS
        .iter()
        .filter(|(m, w, _, _)| *m == mesh && *w == workload)
        .map(|(_, _, _, n)| *n as f64 / EVERY as f64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_queries_give_the_same_answers_from_prometheus_and_meshtrace() {
    let real = RealPrometheus::start(&openmetrics()).await;
    let ours = Ours::start().await;
    let clients = [client(&real.url("")), client(&ours.url())];

    let real_answers = answers(&clients[0]).await;
    let our_answers = answers(&clients[1]).await;
    assert_eq!(real_answers.len(), our_answers.len());
    for (i, (a, b)) in real_answers.iter().zip(&our_answers).enumerate() {
        if let Some(d) = difference(a, b) {
            panic!("answer {i} differs: {d}\nprometheus: {a:?}\nmeshtrace: {b:?}");
        }
    }
    // Every result type came through typed; NaN and infinities were read from their strings.
    let kinds: std::collections::BTreeSet<_> =
        real_answers.iter().map(|a| a.value.kind()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["matrix", "scalar", "string", "vector"]
    );
    let gauges = clients[0]
        .query(
            &Expr::vector(Selector::metric("edge_gauge").unwrap()),
            Some(at(300)),
        )
        .await
        .unwrap();
    let Value::Vector(gauges) = gauges.value else {
        panic!("{gauges:?}")
    };
    let value = |kind: &str| {
        gauges
            .iter()
            .find(|s| s.metric["kind"] == kind)
            .unwrap()
            .point
            .value
    };
    assert!(value("nan").is_nan());
    assert_eq!(value("inf"), f64::INFINITY);
    assert_eq!(value("ninf"), f64::NEG_INFINITY);
    assert_eq!(value("tiny"), 1e-300);
    let string = Expr::String("a \"string\"\n".to_string());
    assert_eq!(
        clients[0]
            .query(&string, Some(at(300)))
            .await
            .unwrap()
            .value,
        Value::String {
            timestamp_ms: at(300),
            value: "a \"string\"\n".into()
        }
    );

    // The rates are the ones the samples were made with.
    for client in &clients {
        let answer = client.query(&table()[1], Some(at(600))).await.unwrap();
        let Value::Vector(samples) = answer.value else {
            panic!()
        };
        assert_eq!(samples.len(), 4, "{}", client.describe());
        for s in samples {
            let want = expected_rate(&s.metric["mesh_id"], &s.metric["destination_workload"]);
            assert!((s.point.value - want).abs() < 1e-9, "{s:?} != {want}");
        }
        // Series and label values, and the build info Kiali reads the version from.
        let series = client
            .series(&[requests().eq("mesh_id", "east").unwrap()], at(0), at(600))
            .await
            .unwrap();
        assert_eq!(series.len(), 4);
        let workloads = client
            .label_values(
                &LabelName::new("destination_workload").unwrap(),
                &[requests()],
            )
            .await
            .unwrap();
        assert_eq!(workloads, ["ratings-v1", "reviews-v1"]);
        assert!(!client.buildinfo().await.unwrap().version.is_empty());
        client.healthy().await.unwrap();
        let storage = client.storage().await;
        assert!(!storage.configured);
        assert_eq!(storage.scrape_interval, Duration::from_secs(15));
    }
}

/// The hostile value `i` selected by equality, by regex and by exclusion: exactly the series
/// that holds it (sample value `i`), with the value read back unchanged.
async fn selects_exactly(client: &PrometheusClient, i: usize) {
    let value = HOSTILE[i];
    let hostile = || Selector::metric("hostile").unwrap();
    for selector in [
        hostile().eq("v", value).unwrap(),
        hostile().re("v", regex_literal(value)).unwrap(),
    ] {
        let answer = client
            .query(&Expr::vector(selector.clone()), Some(at(300)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let Value::Vector(samples) = answer.value else {
            panic!()
        };
        assert_eq!(
            samples.len(),
            1,
            "{value:?} via {selector:?} on {}",
            client.describe()
        );
        assert_eq!(samples[0].metric["v"], value);
        assert_eq!(samples[0].point.value, i as f64);
    }
    let others = client
        .query(
            &Expr::vector(hostile().ne("v", value).unwrap()),
            Some(at(300)),
        )
        .await
        .unwrap();
    let Value::Vector(samples) = others.value else {
        panic!()
    };
    assert_eq!(samples.len(), HOSTILE.len() - 1, "{value:?}");
    assert!(samples.iter().all(|s| s.metric["v"] != value));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_label_values_and_scopes_select_exactly_their_series() {
    let real = RealPrometheus::start(&openmetrics()).await;
    let ours = Ours::start().await;
    for url in [real.url(""), ours.url()] {
        let plain = client(&url);
        for i in 0..HOSTILE.len() {
            selects_exactly(&plain, i).await;
        }
        // The same values as query_scope: every selector of every query gets the matcher.
        for (i, value) in HOSTILE.iter().enumerate() {
            let quoted = serde_json::to_string(value).unwrap();
            let scoped = client_with(
                &url,
                &format!("    query_scope:\n      v: {quoted}\n"),
                &PrometheusOptions::default(),
            );
            let both = Expr::binary(
                BinaryOp::Or,
                Expr::vector(Selector::metric("hostile").unwrap()),
                Expr::vector(Selector::matching(
                    meshtrace_backend::prometheus::Matcher::new(
                        "__name__",
                        meshtrace_backend::prometheus::MatchOp::Equal,
                        "hostile",
                    )
                    .unwrap(),
                )),
            );
            let answer = scoped.query(&both, Some(at(300))).await.unwrap();
            let Value::Vector(samples) = answer.value else {
                panic!()
            };
            assert_eq!(samples.len(), 1, "scope {value:?} on {url}");
            assert_eq!(samples[0].point.value, i as f64);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scope_applies_to_every_selector_and_errors_say_what_prometheus_said() {
    let real = RealPrometheus::start(&openmetrics()).await;
    let ours = Ours::start().await;
    for url in [real.url(""), ours.url()] {
        let east = client_with(
            &url,
            "    query_scope:\n      mesh_id: east\n",
            &PrometheusOptions::default(),
        );
        // Two selectors; both scoped, so the ratio is east's alone: 3 / (30 + 3).
        let errors = Expr::binary(
            BinaryOp::Div,
            Expr::aggregate(
                Aggregation::Sum,
                Grouping::None,
                rate(requests().eq("response_code", "503").unwrap(), 60),
            ),
            Expr::aggregate(
                Aggregation::Sum,
                Grouping::None,
                rate(
                    requests().eq("destination_workload", "reviews-v1").unwrap(),
                    60,
                ),
            ),
        );
        let answer = east.query(&errors, Some(at(600))).await.unwrap();
        let Value::Vector(samples) = &answer.value else {
            panic!()
        };
        assert_eq!(samples.len(), 1);
        assert!(
            (samples[0].point.value - 3.0 / 33.0).abs() < 1e-12,
            "{answer:?}"
        );
        assert_eq!(
            east.render(&errors).matches("mesh_id=\"east\"").count(),
            2,
            "{}",
            east.render(&errors)
        );

        // A query Prometheus refuses: its errorType and error, the URL, the query, a hint.
        let bad = Expr::call(Function::Rate, vec![Expr::String("x".into())]);
        let e = east.query(&bad, None).await.unwrap_err();
        assert!(e.is_bad_request());
        let ErrorKind::Rejected {
            status, error_type, ..
        } = &e.kind
        else {
            panic!("{e:?}")
        };
        assert_eq!((*status, error_type.as_str()), (400, "bad_data"), "{e}");
        let message = e.to_string();
        for part in [
            &format!("Prometheus at {url}"),
            "refused the query `rate(\"x\")`",
            "bad_data",
            "in call to function",
            "got string",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
        // Too many points: Prometheus's own limit, reported the same way.
        let e = east
            .query_range(
                &Expr::vector(requests()),
                at(0),
                at(20_000),
                Duration::from_secs(1),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("11,000 points"), "{e}");
    }
}
