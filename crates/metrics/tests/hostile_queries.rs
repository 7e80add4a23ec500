//! Hostile input against the query API over the wire: generated queries (deep nesting, long
//! operator chains, huge numbers, ranges, offsets and `@` times, long and explosive regular
//! expressions, random PromQL-ish text) and parameters (huge, tiny, negative, malformed
//! times, steps and timeouts). Every answer must be Prometheus's JSON with a 2xx, 400, 422
//! or 503 status: never a 500, a dropped connection, a hang or a crash.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;

use common::Served;
use meshtrace_metrics::http::ApiOptions;
use meshtrace_metrics::{Labels, MemorySource};
use proptest::prelude::*;

struct Server {
    runtime: tokio::runtime::Runtime,
    /// One client: building one sets up TLS, which is slow in a debug build.
    client: reqwest::Client,
    addr: SocketAddr,
    _served: Served,
}

/// One server for all cases, on its own runtime.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let served = runtime.block_on(async {
            let mut builder = MemorySource::builder();
            for (job, le) in [("a", "1"), ("a", "+Inf"), ("b", "0.5"), ("b", "+Inf")] {
                let labels = Labels::new(
                    [("__name__", "up"), ("job", job), ("le", le)]
                        .map(|(n, v)| (n.to_string(), v.to_string())),
                );
                for t in 0..200i64 {
                    builder.push(&labels, 1_000_000 + t * 15_000, (t * t) as f64);
                }
            }
            Served::start(builder.build(), ApiOptions::default()).await
        });
        Server {
            client: reqwest::Client::new(),
            addr: served.addr,
            runtime,
            _served: served,
        }
    })
}

/// Asks `path` with `params`; the answer must be well-formed and not a server error.
fn ask(path: &str, params: &[(&str, String)]) -> Result<(), TestCaseError> {
    let s = server();
    let url = format!("http://{}{}", s.addr, path);
    let (status, text) = s.runtime.block_on(async {
        let response = s
            .client
            .get(&url)
            .query(params)
            .send()
            .await
            .map_err(|e| TestCaseError::fail(format!("{params:?}: no answer: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok::<_, TestCaseError>((status, text))
    })?;
    prop_assert!(
        matches!(status, 200 | 400 | 422 | 503),
        "{path} {params:?} answered {status}: {text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| TestCaseError::fail(format!("{params:?}: not JSON ({e}): {text}")))?;
    let expected = if status == 200 { "success" } else { "error" };
    prop_assert_eq!(body["status"].as_str(), Some(expected), "{}", text);
    Ok(())
}

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("up".to_string()),
        Just(r#"up{job="a"}"#.to_string()),
        Just(r#"up{job=~"(a|b)*c{1000}"}"#.to_string()),
        Just(format!(
            r#"up{{job=~"{}"}}"#,
            "(a|".repeat(300) + &")".repeat(300)
        )),
        Just(format!(
            r#"up{{job!~"{}"}}"#,
            "x?".repeat(2000) + &"x".repeat(2000)
        )),
        Just("up offset 1000000y".to_string()),
        Just("up offset -290y".to_string()),
        Just("up @ 1e300".to_string()),
        Just("up @ -9e15".to_string()),
        Just("up @ end()".to_string()),
        prop::num::f64::ANY.prop_map(|f| format!("{f:e}")),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("0x7fffffffffffffff".to_string()),
        Just("NaN".to_string()),
        Just("-Inf".to_string()),
        Just(r#""string""#.to_string()),
    ]
}

fn range() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1ms".to_string()),
        Just("5m".to_string()),
        Just("292y".to_string()),
        Just("99999999999999999999y".to_string()),
        (1u64..u64::MAX).prop_map(|n| format!("{n}s")),
    ]
}

/// Queries built from atoms with the supported (and some unsupported) constructs.
fn query() -> impl Strategy<Value = String> {
    atom().prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            (inner.clone(), range()).prop_map(|(q, r)| format!("rate({q}[{r}])")),
            (inner.clone(), range()).prop_map(|(q, r)| format!("irate(up[{r}] offset {q})")),
            inner.clone().prop_map(|q| format!("sum by (job) ({q})")),
            inner
                .clone()
                .prop_map(|q| format!("avg without (le) ({q})")),
            inner.clone().prop_map(|q| format!("count({q})")),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("histogram_quantile({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("round({a}, {b})")),
            (
                inner.clone(),
                inner.clone(),
                prop::sample::select(vec![
                    "+",
                    "-",
                    "*",
                    "/",
                    "%",
                    "^",
                    "==",
                    "!=",
                    ">",
                    "<",
                    ">=",
                    "<=",
                    "> bool",
                    "and",
                    "or",
                    "unless",
                    "/ on(job)",
                    "* ignoring(le) group_left",
                    "+ on(job) group_right(le)",
                ])
            )
                .prop_map(|(a, b, op)| format!("({a}) {op} ({b})")),
            inner.clone().prop_map(|q| format!("-({q})")),
            inner.prop_map(|q| format!("topk(1, {q})")),
        ]
    })
}

fn time() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1003.5".to_string()),
        Just("1e300".to_string()),
        Just("-1e300".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("1e-300".to_string()),
        Just("+Inf".to_string()),
        Just("2023-11-14T22:13:20.123456789Z".to_string()),
        Just("9999-12-31T23:59:59Z".to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9eE.+-:TZ]{0,30}",
    ]
}

fn step() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("15s".to_string()),
        Just("1e-300".to_string()),
        Just("1e300".to_string()),
        Just("0.0001".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999y".to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "[0-9a-z.]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn generated_queries_get_clean_answers(q in query(), t in time()) {
        ask("/api/v1/query", &[("query", q.clone()), ("time", t)])?;
        ask("/api/v1/query_range", &[("query", q), ("start", "1000".into()), ("end", "4000".into()), ("step", "60".into())])?;
    }

    #[test]
    fn random_text_gets_clean_answers(q in r#"[a-z_0-9(){}\[\]"'=~!<>+*/%^@:,. \-]{0,200}"#) {
        ask("/api/v1/query", &[("query", q)])?;
    }

    #[test]
    fn hostile_parameters_get_clean_answers(start in time(), end in time(), s in step(), timeout in step()) {
        ask("/api/v1/query_range", &[("query", "sum(rate(up[5m]))".into()), ("start", start.clone()), ("end", end.clone()), ("step", s), ("timeout", timeout.clone())])?;
        ask("/api/v1/query", &[("query", "up".into()), ("time", start.clone()), ("lookback_delta", timeout)])?;
        ask("/api/v1/series", &[("match[]", "up".into()), ("start", start.clone()), ("end", end.clone())])?;
        ask("/api/v1/label/job/values", &[("start", start), ("end", end)])?;
    }
}

/// The deepest and longest queries the limits let through evaluate (on the API's blocking
/// threads, in a debug build) without exhausting the stack; one more level is refused.
#[test]
fn the_largest_allowed_queries_evaluate() {
    let deepest = format!("{}up{}", "sum(".repeat(63), ")".repeat(63));
    let chain = format!("up{}", " + up".repeat(255));
    let negations = format!("{}up", "-".repeat(255));
    let mixed = format!("{}rate(up[5m]){}", "-(".repeat(60), " * 2)".repeat(60));
    for query in [deepest, chain, negations, mixed] {
        ask(
            "/api/v1/query_range",
            &[
                ("query", query.clone()),
                ("start", "1000".into()),
                ("end", "4000".into()),
                ("step", "15".into()),
            ],
        )
        .unwrap();
        let s = server();
        let body: serde_json::Value = s.runtime.block_on(async {
            meshtrace_testkit::http::json(
                s.client
                    .get(format!("http://{}/api/v1/query", s.addr))
                    .query(&[("query", query.as_str()), ("time", "2000")]),
            )
            .await
        });
        assert_eq!(body["status"], "success", "{} chars: {body}", query.len());
    }
    let too_deep = format!("{}up{}", "sum(".repeat(65), ")".repeat(65));
    ask("/api/v1/query", &[("query", too_deep)]).unwrap();
}
