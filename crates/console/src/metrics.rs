//! The console's own metrics, in Prometheus' text format: requests and their latency per
//! route, and the latency of every backend call per `query_group` (as Kiali's
//! `kiali_tracing_processing_duration_seconds`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations at or under each bucket's bound (cumulative when written out).
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    backend: Mutex<BTreeMap<&'static str, Histogram>>,
    backend_failures: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap()
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        self.latency
            .lock()
            .unwrap()
            .entry(route.to_string())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// A backend call of `group` (`AppTraces`, `TraceDetail`, `ErrorTraces`, `ServiceStatus`,
    /// `Services`, `Inventory`).
    pub fn backend_call(&self, group: &'static str, took: Duration, ok: bool) {
        self.backend
            .lock()
            .unwrap()
            .entry(group)
            .or_default()
            .observe(took.as_secs_f64());
        if !ok {
            *self
                .backend_failures
                .lock()
                .unwrap()
                .entry(group)
                .or_default() += 1;
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP meshtrace_http_requests_total Requests answered by the console.\n");
        out.push_str("# TYPE meshtrace_http_requests_total counter\n");
        for ((route, method, status), n) in self.requests.lock().unwrap().iter() {
            let _ = writeln!(
                out,
                "meshtrace_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP meshtrace_http_request_duration_seconds Time to answer a request, per route.\n",
        );
        out.push_str("# TYPE meshtrace_http_request_duration_seconds histogram\n");
        for (route, histogram) in self.latency.lock().unwrap().iter() {
            histogram.write(
                &mut out,
                "meshtrace_http_request_duration_seconds",
                &format!("route=\"{}\"", escape(route)),
            );
        }
        out.push_str("# HELP meshtrace_tracing_processing_duration_seconds Time of each call to the tracing backend, per query group.\n");
        out.push_str("# TYPE meshtrace_tracing_processing_duration_seconds histogram\n");
        for (group, histogram) in self.backend.lock().unwrap().iter() {
            histogram.write(
                &mut out,
                "meshtrace_tracing_processing_duration_seconds",
                &format!("query_group=\"{group}\""),
            );
        }
        out.push_str(
            "# HELP meshtrace_tracing_failures_total Calls to the tracing backend that failed.\n",
        );
        out.push_str("# TYPE meshtrace_tracing_failures_total counter\n");
        for (group, n) in self.backend_failures.lock().unwrap().iter() {
            let _ = writeln!(
                out,
                "meshtrace_tracing_failures_total{{query_group=\"{group}\"}} {n}"
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let metrics = Metrics::default();
        metrics.backend_call("AppTraces", Duration::from_millis(3), true);
        metrics.backend_call("AppTraces", Duration::from_millis(30), false);
        let text = metrics.render();
        assert!(text.contains(
            "meshtrace_tracing_processing_duration_seconds_bucket{query_group=\"AppTraces\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "meshtrace_tracing_processing_duration_seconds_bucket{query_group=\"AppTraces\",le=\"0.05\"} 2\n"
        ));
        assert!(text.contains(
            "meshtrace_tracing_processing_duration_seconds_count{query_group=\"AppTraces\"} 2\n"
        ));
        assert!(text.contains("meshtrace_tracing_failures_total{query_group=\"AppTraces\"} 1\n"));
    }
}
