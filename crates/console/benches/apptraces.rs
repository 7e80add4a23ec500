//! The console's own work on the apps-traces route, against what serde_json alone takes to
//! decode the same backend answer: 500 traces of 40 Istio spans, from Jaeger's HTTP API (JSON)
//! and from its gRPC API (protobuf chunks of 10 spans, as Jaeger streams them).
//!
//! Run: `cargo bench -p meshtrace-console --bench apptraces` (`ROUNDS=N` to change the count).

use std::hint::black_box;
use std::time::{Duration, Instant};

use meshtrace_backend::jaeger_grpc::spans_from_chunk;
use meshtrace_backend::jaeger_http::decode_find_traces;
use meshtrace_console::tracing_api::traces_body;
use meshtrace_mesh::{Kind, Target, trace_matches};
use meshtrace_model::jaeger_json::trace_to_json;
use meshtrace_model::{Span, Trace, TraceId, group_by_trace};
use meshtrace_proto::api_v2::SpansResponseChunk;
use meshtrace_proto::convert::span_to_proto;
use meshtrace_sim::{Generator, Mesh, Options, Topology};
use prost::Message;

/// Jaeger's `/api/traces` envelope, decoded by serde alone into its JSON structs.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Envelope {
    data: Vec<meshtrace_model::jaeger_json::JsonTrace>,
}

/// The allocator of the `meshtrace` binary, so the figures are the shipped ones.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRACES: usize = 500;
const SPANS_PER_TRACE: usize = 40;

/// Simulated Bookinfo spans regrouped into traces of exactly 40 spans.
fn traces() -> Vec<Trace> {
    let mut generator =
        Generator::new(Mesh::new(Topology::bookinfo(), 3, 1), 3, Options::default());
    let mut pool: Vec<Span> = Vec::new();
    let mut start = 1_700_000_000_000_000u64;
    while pool.len() < TRACES * SPANS_PER_TRACE {
        pool.extend(generator.request(start).spans);
        start += 1000;
    }
    pool.truncate(TRACES * SPANS_PER_TRACE);
    pool.chunks(SPANS_PER_TRACE)
        .enumerate()
        .map(|(i, spans)| {
            let id = TraceId(0x5eed_0000_0000_0000_0000_0000_0000_0000 | i as u128);
            let spans = spans
                .iter()
                .cloned()
                .map(|mut span| {
                    span.trace_id = id;
                    for r in &mut span.references {
                        r.trace_id = id;
                    }
                    span
                })
                .collect();
            Trace {
                spans,
                warnings: vec![],
            }
        })
        .collect()
}

/// The median of `rounds` timings of `f`, after two warm-up calls.
fn median(rounds: usize, mut f: impl FnMut()) -> Duration {
    f();
    f();
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[rounds / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let traces = traces();
    let target = Target {
        kind: Kind::App,
        namespace: "bookinfo".into(),
        name: "productpage".into(),
        app: "productpage".into(),
    };

    // What Jaeger's HTTP API sends: {"data":[...], "total":0, ...}.
    let http_body = serde_json::to_vec(&serde_json::json!({
        "data": traces.iter().map(trace_to_json).collect::<Vec<_>>(),
        "total": 0, "limit": 0, "offset": 0, "errors": null,
    }))
    .unwrap();
    // What its gRPC API streams: each trace's spans in chunks of 10.
    let grpc_messages: Vec<Vec<u8>> = traces
        .iter()
        .flat_map(|t| t.spans.chunks(10))
        .map(|spans| {
            SpansResponseChunk {
                spans: spans.iter().map(span_to_proto).collect(),
            }
            .encode_to_vec()
        })
        .collect();
    let grpc_bytes: usize = grpc_messages.iter().map(Vec::len).sum();

    let serde_alone = median(rounds, || {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(&http_body)).unwrap());
    });
    let serde_typed = median(rounds, || {
        black_box(serde_json::from_slice::<Envelope>(black_box(&http_body)).unwrap());
    });
    let console_http = median(rounds, || {
        let (mut found, _) = decode_find_traces(black_box(&http_body)).unwrap();
        found.retain(|t| trace_matches(t, &target));
        black_box(traces_body(&found, "productpage.bookinfo", None).unwrap());
    });
    let console_grpc = median(rounds, || {
        let mut spans = Vec::with_capacity(TRACES * SPANS_PER_TRACE);
        for message in black_box(&grpc_messages) {
            let chunk = SpansResponseChunk::decode(message.as_slice()).unwrap();
            spans.extend(spans_from_chunk(&chunk).unwrap());
        }
        let mut found = group_by_trace(spans);
        found.retain(|t| trace_matches(t, &target));
        black_box(traces_body(&found, "productpage.bookinfo", None).unwrap());
    });
    let answer = traces_body(&traces, "productpage.bookinfo", None).unwrap();

    println!(
        "{TRACES} traces x {SPANS_PER_TRACE} spans; Jaeger HTTP body {:.1} MB, gRPC chunks {:.1} MB, console answer {:.1} MB; median of {rounds} rounds",
        http_body.len() as f64 / 1e6,
        grpc_bytes as f64 / 1e6,
        answer.len() as f64 / 1e6,
    );
    println!(
        "serde_json::Value decode of the HTTP body     {}",
        ms(serde_alone)
    );
    println!(
        "serde_json typed decode (Jaeger JSON structs)  {}",
        ms(serde_typed)
    );
    println!(
        "console, Jaeger HTTP (decode, filter, encode) {}  ratio {:.2}",
        ms(console_http),
        console_http.as_secs_f64() / serde_alone.as_secs_f64()
    );
    println!(
        "console, Jaeger gRPC (decode, filter, encode) {}  ratio {:.2}",
        ms(console_grpc),
        console_grpc.as_secs_f64() / serde_alone.as_secs_f64()
    );
}
