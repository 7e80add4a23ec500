//! Store benchmark: ingest over OTLP/gRPC into a durable store, disk per span, trace-by-ID and
//! search latency, each next to its limit measured in the same run.
//!
//! `cargo bench -p meshtrace-store --bench store` (env: SPANS, default 300000; CLIENTS, 4; ONLY,
//! one part of the quick run: memory, durable, engine or ingest;
//! METRICS, `both` (default: every ingest figure with the metrics derivation off and on, in the
//! same run, alternating, ROUNDS times each, default 3; the cost is reported from the best of
//! each and as the median over the off/on pairs, as the machines are noisy), `on` or `off`).
//! Spans are Istio-shaped: eight per trace, twenty string attributes each, like the sidecar
//! spans of a Bookinfo request through a mesh of 16 pods (WORKLOAD=random-pods: every span
//! claims a pod, IPs and request ID of its own, the workload before 2026-12-01).
//!
//! Three runs, one module each: [`quick`] (always), [`sustained`] (SUSTAIN_SECS > 0) and
//! [`at_scale`] (QUERY_SPANS > 0, with [`derived_scale`]); [`workload`] makes the spans, [`measure`] holds what they
//! share.

mod at_scale;
mod derivation;
mod derived_scale;
mod measure;
mod quick;
mod sustained;
mod workload;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if std::env::var("MESHTRACE_BENCH_ROLE").as_deref() == Ok("server") {
        return sustained::server_role();
    }
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    quick::quick();
    if let Some(seconds) = env("SUSTAIN_SECS").filter(|s| *s > 0) {
        sustained::sustained(seconds as u64);
    }
    if let Some(spans) = env("QUERY_SPANS").filter(|s| *s > 0) {
        at_scale::at_scale(spans);
    }
}
