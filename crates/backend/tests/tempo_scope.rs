//! Hostile tags against the Tempo client (issue 13, defect 4): a tag key or value must stay one
//! condition of the one spanset, whatever its characters, and traces Tempo returns without the
//! query's tags (another mesh's) must not reach the caller. Tempo cannot run here: a local
//! server records the TraceQL it is sent and answers with the real search responses captured
//! by Kiali (tests/fixtures/tempo), and `syntax` reads the query as Tempo's lexer would.

mod common;

#[path = "tempo_scope/syntax.rs"]
mod syntax;

use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use meshtrace_backend::{BackendError, TraceQuery, TracingBackend, traceql};
use proptest::prelude::*;
use serde_json::Value;
use syntax::{Condition, parse};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/tempo/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A Tempo that answers every search with `answer` and keeps the `q` of each.
#[derive(Clone)]
struct FakeTempo {
    answer: Arc<Value>,
    queries: Arc<Mutex<Vec<String>>>,
}

async fn search(State(tempo): State<FakeTempo>, RawQuery(raw): RawQuery) -> impl IntoResponse {
    let q = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    tempo.queries.lock().unwrap().push(q);
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        tempo.answer.to_string(),
    )
}

async fn fake_tempo(answer: Value) -> (String, FakeTempo) {
    let tempo = FakeTempo {
        answer: Arc::new(answer),
        queries: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/api/search", axum::routing::get(search))
        .with_state(tempo.clone());
    let address = meshtrace_testkit::http::serve(app).await;
    (format!("http://{address}"), tempo)
}

fn client(internal_url: &str) -> Box<dyn TracingBackend> {
    common::tracing_backend("tempo", false, internal_url, "")
}

fn query(tags: &[(&str, &str)]) -> TraceQuery {
    TraceQuery {
        service: "reviews.bookinfo".into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        start: 1_701_778_000_000_000,
        end: 1_701_778_100_000_000,
        min_duration: None,
        limit: 20,
    }
}

fn condition(scope: &str, name: &str, value: &str) -> Condition {
    Condition {
        scope: scope.into(),
        name: name.into(),
        value: value.into(),
    }
}

/// The conditions a search for `query` must have: the service, then each tag.
fn expected_conditions(query: &TraceQuery) -> Vec<Condition> {
    let mut expected = vec![condition("resource", "service.name", &query.service)];
    for (key, value) in &query.tags {
        if key == "error" && value == "true" {
            expected.push(condition("intrinsic", "status", "error"));
        } else {
            expected.push(condition("", key, value));
        }
    }
    expected
}

/// The Ambient fixture's one trace, once per mesh: with `mesh_id` set to each of `meshes`
/// (`None`: not set) on every span, and a trace ID of its own.
fn meshes_answer(meshes: &[Option<&str>]) -> Value {
    let mut answer =
        meshtrace_testkit::tempo::answer_per_mesh(&fixture("responseAmbient.json"), meshes);
    for trace in answer["traces"].as_array_mut().unwrap() {
        trace["spanSet"] = trace["spanSets"][0].clone();
    }
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn an_injected_tag_key_stays_one_condition_of_the_spanset() {
    let (url, tempo) = fake_tempo(meshes_answer(&[Some("m1")])).await;
    let tempo_client = client(&url);
    // `query_scope: {mesh_id: m1}` and a tag key from `?tags=` that tries to close the spanset.
    let injected = query(&[("mesh_id", "m1"), ("x} || { true", "y")]);
    match tempo_client.find_traces(&injected).await {
        Ok(found) => {
            let sent = tempo.queries.lock().unwrap().clone();
            assert_eq!(sent.len(), 1);
            let parsed = parse(&sent[0]).unwrap_or_else(|e| panic!("{e}: {}", sent[0]));
            assert_eq!(
                parsed.conditions,
                expected_conditions(&injected),
                "{}",
                sent[0]
            );
            // The fixture's spans do not carry the injected key: nothing comes back.
            assert!(found.traces.is_empty(), "{:?}", found.traces);
        }
        Err(error) => {
            assert!(matches!(error, BackendError::InvalidQuery(_)), "{error}");
            assert!(error.to_string().contains("x} || { true"), "{error}");
            assert!(tempo.queries.lock().unwrap().is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_values_stay_strings_and_unusable_keys_are_refused() {
    let (url, tempo) = fake_tempo(meshes_answer(&[])).await;
    let tempo_client = client(&url);
    let hostile = query(&[
        ("mesh_id", "m1\" } || { true } | select(\\"),
        ("line", "a\nb\r\t\u{0}\u{7f}\u{feff}é😀"),
        ("5xx", "x"),
        ("", "empty"),
    ]);
    // An empty key cannot be written in TraceQL: refused, naming the parameter.
    let error = tempo_client.find_traces(&hostile).await.unwrap_err();
    assert!(matches!(error, BackendError::InvalidQuery(_)), "{error}");
    assert!(error.to_string().contains("tag key ``"), "{error}");
    let mut tags = hostile.clone();
    tags.tags.remove("");
    tempo_client.find_traces(&tags).await.unwrap();
    let sent = tempo.queries.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "refused queries are not sent");
    let parsed = parse(&sent[0]).unwrap_or_else(|e| panic!("{e}: {}", sent[0]));
    assert_eq!(parsed.conditions, expected_conditions(&tags), "{}", sent[0]);
    // A control character in a key is refused too.
    let error = tempo_client
        .find_traces(&query(&[("a\nb", "x")]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("tag key `a\\nb`"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn traces_of_another_mesh_are_dropped() {
    // Tempo answers with traces of mesh m1, of mesh m2 and without a mesh: only the first is
    // in scope, whatever the query made Tempo return.
    let (url, tempo) = fake_tempo(meshes_answer(&[Some("m1"), Some("m2"), None])).await;
    let found = client(&url)
        .find_traces(&query(&[("mesh_id", "m1")]))
        .await
        .unwrap();
    assert_eq!(found.traces.len(), 1, "{:?}", found.traces);
    let trace = &found.traces[0];
    assert!(trace.trace_id().unwrap().to_hex32().ends_with('0'));
    assert_eq!(trace.spans.len(), 4);
    // The scope key is selected, so Tempo returns it on every span it sends.
    let sent = tempo.queries.lock().unwrap().clone();
    let parsed = parse(&sent[0]).unwrap_or_else(|e| panic!("{e}: {}", sent[0]));
    assert!(
        parsed
            .selected
            .contains(&(String::new(), "mesh_id".to_string())),
        "{}",
        sent[0]
    );

    // Tags the answer does carry keep everything (the Ambient fixture's cluster tag).
    let (url, _) = fake_tempo(fixture("responseAmbient.json")).await;
    let found = client(&url)
        .find_traces(&query(&[("istio.cluster_id", "Kubernetes")]))
        .await
        .unwrap();
    assert_eq!(found.traces.len(), 1);
    assert_eq!(found.traces[0].spans.len(), 4);
}

/// Keys and values from anywhere in Unicode, with TraceQL's own punctuation over-represented.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(vec![
                '{', '}', '"', '\\', '|', '&', '=', '~', '!', '(', ')', ',', ' ', '.', '\n',
                '\0', 'x', '5', '/', '`', '\'', '\u{feff}',
            ]),
            1 => any::<char>(),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// For any tags, the query is one spanset whose conditions are exactly the service and
    /// the tags, each comparing its own key with its own value; or the builder refuses a key
    /// TraceQL cannot name, saying which.
    #[test]
    fn any_tags_stay_inside_the_one_spanset(
        service in text(),
        tags in prop::collection::btree_map(text(), text(), 0..4),
    ) {
        let query = TraceQuery { service, tags: tags.clone(), ..TraceQuery::default() };
        match traceql(&query) {
            Ok(built) => {
                let parsed = parse(&built).map_err(|e| TestCaseError::fail(format!("{e}: {built}")))?;
                prop_assert_eq!(parsed.conditions, expected_conditions(&query), "{}", built);
            }
            Err(error) => {
                let message = error.to_string();
                prop_assert!(
                    tags.keys().any(|k| k.is_empty() || k.chars().any(|c| c.is_control() || c == '\u{feff}')),
                    "refused: {}", message
                );
                prop_assert!(message.contains("tag key `"), "{}", message);
            }
        }
    }
}

#[test]
fn the_query_keeps_kialis_shape() {
    // Kiali's Tempo query: service and tags on one span set, `error=true` as the status.
    let built = traceql(&query(&[
        ("istio.cluster_id", "Kubernetes"),
        ("error", "true"),
    ]))
    .unwrap();
    assert!(
        built.starts_with(
            "{ resource.service.name = \"reviews.bookinfo\" && status = error && .istio.cluster_id = \"Kubernetes\" } | select(status, .node_id"
        ),
        "{built}"
    );
}
