//! Traffic spread evenly over a past window, for benchmarks that fill a store with hours of
//! requests at once: about `spans` spans in batches, and one complete trace's Envoy spans.

use meshtrace_model::Span;

use crate::Generator;

/// Spans written per batch.
const BATCH: usize = 10_000;

/// Generates requests spread evenly over `window_us` from `start_us` until about `spans` spans
/// (a Bookinfo request has ~8), hands them to `write` in batches of ~10,000, and returns the
/// Envoy spans (`component=proxy`: sidecars and gateway) of the first request that reached
/// every proxy it could (the most Envoy spans seen, up to 8, of a request that did not fail).
pub fn spread(
    generator: &mut Generator,
    spans: usize,
    start_us: u64,
    window_us: u64,
    mut write: impl FnMut(&[Span]),
) -> Vec<Span> {
    let requests = (spans / 8).max(1) as u64;
    let every_us = window_us / requests;
    let mut trace: Vec<Span> = Vec::new();
    let (mut written, mut batch) = (0usize, Vec::new());
    let mut i = 0u64;
    while written.saturating_add(batch.len()) < spans {
        let request = generator.request(start_us.saturating_add(i.saturating_mul(every_us)));
        i = i.saturating_add(1);
        let proxies: Vec<Span> = request
            .spans
            .iter()
            .filter(|s| s.tag("component").is_some_and(|v| v.as_text() == "proxy"))
            .cloned()
            .collect();
        if trace.len() < 8 && proxies.len() > trace.len() && !request.failed {
            trace = proxies;
        }
        batch.extend(request.spans);
        if batch.len() >= BATCH {
            write(&batch);
            written = written.saturating_add(batch.len());
            batch.clear();
        }
    }
    if !batch.is_empty() {
        write(&batch);
    }
    trace
}

/// The benchmarks' store filling: requests of the built-in Bookinfo mesh (the same mesh and
/// seed in every benchmark, so their figures compare) [`spread`] over the 3 hours before
/// `now_s` (seconds since the epoch).
pub fn bookinfo_last_3h(spans: usize, now_s: u64, write: impl FnMut(&[Span])) -> Vec<Span> {
    const WINDOW_S: u64 = 3 * 3600;
    let mut generator = Generator::new(
        crate::Mesh::new(crate::Topology::bookinfo(), 5, 1),
        5,
        crate::Options::default(),
    );
    let start_us = now_s.saturating_sub(WINDOW_S).saturating_mul(1_000_000);
    spread(&mut generator, spans, start_us, WINDOW_S * 1_000_000, write)
}
