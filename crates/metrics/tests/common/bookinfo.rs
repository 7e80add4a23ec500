//! The samples both engines hold in the comparison test, as OpenMetrics text: Istio's standard
//! metrics for Bookinfo (both reporters, several response codes, request-duration histograms,
//! byte sums, TCP bytes) scraped every 15 s for 30 minutes, and edge-case series (counter
//! resets, gaps, a late start, jittered scrapes, NaN and infinities, tiny and huge values,
//! broken histograms, two metrics whose labels collide once the name is dropped).

use std::fmt::Write;

/// The first scrape, in Unix seconds.
pub const BASE: i64 = 1_700_000_000;
/// Scrapes 0..=120, every 15 s: 30 minutes.
const SCRAPES: i64 = 120;
const INTERVAL_MS: i64 = 15_000;
/// Envoy's default bounds, cut to what the simulated latencies reach.
const BUCKETS: [&str; 11] = [
    "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "+Inf",
];

/// A small deterministic generator (xorshift64*), so every run writes the same samples.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Workload {
    ns: &'static str,
    name: &'static str,
    app: &'static str,
    version: &'static str,
}

const fn wl(
    ns: &'static str,
    name: &'static str,
    app: &'static str,
    version: &'static str,
) -> Workload {
    Workload {
        ns,
        name,
        app,
        version,
    }
}

const GATEWAY: Workload = wl(
    "istio-system",
    "istio-ingressgateway",
    "istio-ingressgateway",
    "unknown",
);
const PRODUCTPAGE: Workload = wl("bookinfo", "productpage-v1", "productpage", "v1");
const DETAILS: Workload = wl("bookinfo", "details-v1", "details", "v1");
const REVIEWS1: Workload = wl("bookinfo", "reviews-v1", "reviews", "v1");
const REVIEWS2: Workload = wl("bookinfo", "reviews-v2", "reviews", "v2");
const REVIEWS3: Workload = wl("bookinfo", "reviews-v3", "reviews", "v3");
const RATINGS: Workload = wl("bookinfo", "ratings-v1", "ratings", "v1");
const UNKNOWN: Workload = wl("unknown", "unknown", "unknown", "unknown");

/// An edge: who calls whom, per-second rate, the responses as (code, flags, grpc status, share).
struct Edge {
    from: Workload,
    to: Workload,
    service: &'static str,
    protocol: &'static str,
    rate: f64,
    responses: &'static [(&'static str, &'static str, &'static str, f64)],
    /// Typical latency in ms.
    latency: f64,
}

const OK: &[(&str, &str, &str, f64)] = &[("200", "-", "", 1.0)];

fn edges() -> Vec<Edge> {
    vec![
        Edge {
            from: GATEWAY,
            to: PRODUCTPAGE,
            service: "productpage",
            protocol: "http",
            rate: 4.0,
            responses: &[
                ("200", "-", "", 0.95),
                ("503", "UF", "", 0.03),
                ("0", "DC", "", 0.02),
            ],
            latency: 40.0,
        },
        Edge {
            from: PRODUCTPAGE,
            to: DETAILS,
            service: "details",
            protocol: "http",
            rate: 3.5,
            responses: &[("200", "-", "", 0.9), ("500", "-", "", 0.1)],
            latency: 3.0,
        },
        Edge {
            from: PRODUCTPAGE,
            to: REVIEWS1,
            service: "reviews",
            protocol: "http",
            rate: 1.2,
            responses: OK,
            latency: 8.0,
        },
        Edge {
            from: PRODUCTPAGE,
            to: REVIEWS2,
            service: "reviews",
            protocol: "http",
            rate: 1.1,
            responses: &[("200", "-", "", 0.97), ("404", "-", "", 0.03)],
            latency: 20.0,
        },
        Edge {
            from: PRODUCTPAGE,
            to: REVIEWS3,
            service: "reviews",
            protocol: "http",
            rate: 1.3,
            responses: OK,
            latency: 25.0,
        },
        Edge {
            from: REVIEWS2,
            to: RATINGS,
            service: "ratings",
            protocol: "grpc",
            rate: 1.1,
            responses: &[("200", "-", "0", 0.9), ("200", "-", "14", 0.1)],
            latency: 2.0,
        },
        Edge {
            from: REVIEWS3,
            to: RATINGS,
            service: "ratings",
            protocol: "http",
            rate: 1.3,
            responses: OK,
            latency: 2.5,
        },
        // Requests that never reached a workload: no route (NR) from the gateway.
        Edge {
            from: GATEWAY,
            to: UNKNOWN,
            service: "reviews",
            protocol: "http",
            rate: 0.1,
            responses: &[("503", "NR", "", 1.0)],
            latency: 0.5,
        },
        Edge {
            from: UNKNOWN,
            to: PRODUCTPAGE,
            service: "productpage",
            protocol: "http",
            rate: 0.2,
            responses: &[("200", "-", "", 0.5), ("403", "-", "", 0.5)],
            latency: 30.0,
        },
    ]
}

/// Istio's labels of an edge as one reporter sees it (without the response's).
fn istio_labels(edge: &Edge, reporter: &str) -> Vec<(String, String)> {
    let (from, to) = (&edge.from, &edge.to);
    let principal = |w: &Workload| {
        if w.ns == "unknown" {
            "unknown".to_string()
        } else {
            format!("spiffe://cluster.local/ns/{}/sa/bookinfo-{}", w.ns, w.app)
        }
    };
    let cluster = |w: &Workload| {
        if w.ns == "unknown" {
            "unknown"
        } else {
            "Kubernetes"
        }
    };
    let revision = |w: &Workload| {
        if w.version == "unknown" {
            "latest"
        } else {
            w.version
        }
    };
    // An unreached destination still has its service (from the request's host).
    let service_ns = if to.ns == "unknown" {
        "bookinfo"
    } else {
        to.ns
    };
    let mtls = if reporter == "source" {
        "unknown"
    } else if from.ns == "unknown" {
        "none"
    } else {
        "mutual_tls"
    };
    [
        ("reporter", reporter.to_string()),
        ("source_workload", from.name.to_string()),
        ("source_workload_namespace", from.ns.to_string()),
        ("source_app", from.app.to_string()),
        ("source_version", from.version.to_string()),
        ("source_principal", principal(from)),
        ("source_cluster", cluster(from).to_string()),
        ("source_canonical_service", from.app.to_string()),
        ("source_canonical_revision", revision(from).to_string()),
        ("destination_workload", to.name.to_string()),
        ("destination_workload_namespace", to.ns.to_string()),
        ("destination_app", to.app.to_string()),
        ("destination_version", to.version.to_string()),
        ("destination_principal", principal(to)),
        ("destination_canonical_service", to.app.to_string()),
        ("destination_canonical_revision", revision(to).to_string()),
        (
            "destination_service",
            format!("{}.{service_ns}.svc.cluster.local", edge.service),
        ),
        ("destination_service_name", edge.service.to_string()),
        ("destination_service_namespace", service_ns.to_string()),
        ("destination_cluster", cluster(to).to_string()),
        ("request_protocol", edge.protocol.to_string()),
        ("connection_security_policy", mtls.to_string()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect()
}

/// Writes the samples of one series.
fn series(out: &mut String, name: &str, labels: &[(String, String)], points: &[(i64, f64)]) {
    let mut head = String::from(name);
    head.push('{');
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            head.push(',');
        }
        let _ = write!(
            head,
            "{n}=\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        );
    }
    head.push('}');
    for &(ms, value) in points {
        let value = if value.is_nan() {
            "NaN".to_string()
        } else if value.is_infinite() {
            if value > 0.0 {
                "+Inf".to_string()
            } else {
                "-Inf".to_string()
            }
        } else {
            format!("{value}")
        };
        let _ = writeln!(out, "{head} {value} {}.{:03}", ms / 1000, ms % 1000);
    }
}

fn with(labels: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = labels.to_vec();
    all.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    all
}

/// Scrape times in ms, every 15 s from [`BASE`], shifted by `jitter_ms`.
fn times(jitter_ms: i64) -> impl Iterator<Item = i64> {
    (0..=SCRAPES).map(move |k| BASE * 1000 + k * INTERVAL_MS + jitter_ms)
}

/// The whole data set as OpenMetrics text.
pub fn openmetrics() -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut requests =
        String::from("# TYPE istio_requests counter\n# HELP istio_requests Requests.\n");
    let mut durations = String::from(
        "# TYPE istio_request_duration_milliseconds histogram\n# HELP istio_request_duration_milliseconds Request duration.\n",
    );
    let mut bytes = String::new();
    for (e, edge) in edges().iter().enumerate() {
        for reporter in ["source", "destination"] {
            // Out-of-mesh callers have no source proxy to report, unreached workloads no
            // destination proxy.
            let side = if reporter == "source" {
                &edge.from
            } else {
                &edge.to
            };
            if side.ns == "unknown" {
                continue;
            }
            let base = istio_labels(edge, reporter);
            // Half the edges scrape on the 15 s grid, half a little after it.
            let jitter = if e % 2 == 0 { 0 } else { 1000 + 731 * e as i64 };
            let mut total_per_scrape = vec![0u64; SCRAPES as usize + 1];
            for &(code, flags, grpc, share) in edge.responses {
                let mut value = rng.below(500) as f64;
                let mut points = Vec::new();
                for (k, t) in times(jitter).enumerate() {
                    let n = (edge.rate * share * 15.0 * (0.5 + rng.unit())).round() as u64;
                    value += n as f64;
                    total_per_scrape[k] += n;
                    points.push((t, value));
                }
                let labels = with(
                    &base,
                    &[
                        ("response_code", code),
                        ("response_flags", flags),
                        ("grpc_response_status", grpc),
                    ],
                );
                series(&mut requests, "istio_requests_total", &labels, &points);
            }
            // One histogram per edge and reporter, for code 200.
            let labels = with(&base, &[("response_code", "200"), ("response_flags", "-")]);
            let mut cumulative = vec![0u64; BUCKETS.len()];
            let (mut sum, mut count) = (0.0f64, 0u64);
            let mut bucket_points = vec![Vec::new(); BUCKETS.len()];
            let (mut sum_points, mut count_points) = (Vec::new(), Vec::new());
            let (mut req_bytes, mut resp_bytes) = (0.0f64, 0.0f64);
            let (mut req_points, mut resp_points) = (Vec::new(), Vec::new());
            for (k, t) in times(jitter).enumerate() {
                for _ in 0..total_per_scrape[k] {
                    let latency = edge.latency * (0.2 + 3.0 * rng.unit() * rng.unit());
                    let latency = (latency * 1000.0).round() / 1000.0;
                    for (b, bound) in BUCKETS.iter().enumerate() {
                        let bound: f64 = bound.replace("+Inf", "inf").parse().unwrap();
                        if latency <= bound {
                            cumulative[b] += 1;
                        }
                    }
                    sum += latency;
                    count += 1;
                    req_bytes += (200 + rng.below(300)) as f64;
                    resp_bytes += (1000 + rng.below(4000)) as f64;
                }
                for (b, points) in bucket_points.iter_mut().enumerate() {
                    points.push((t, cumulative[b] as f64));
                }
                sum_points.push((t, sum));
                count_points.push((t, count as f64));
                req_points.push((t, req_bytes));
                resp_points.push((t, resp_bytes));
            }
            for (b, bound) in BUCKETS.iter().enumerate() {
                series(
                    &mut durations,
                    "istio_request_duration_milliseconds_bucket",
                    &with(&labels, &[("le", bound)]),
                    &bucket_points[b],
                );
            }
            series(
                &mut durations,
                "istio_request_duration_milliseconds_sum",
                &labels,
                &sum_points,
            );
            series(
                &mut durations,
                "istio_request_duration_milliseconds_count",
                &labels,
                &count_points,
            );
            series(&mut bytes, "istio_request_bytes_sum", &labels, &req_points);
            series(
                &mut bytes,
                "istio_response_bytes_sum",
                &labels,
                &resp_points,
            );
            series(
                &mut bytes,
                "istio_response_bytes_count",
                &labels,
                &count_points,
            );
        }
    }
    let mut out = requests;
    out.push_str(&durations);
    out.push_str(&bytes);
    tcp(&mut out, &mut rng);
    edge_cases(&mut out, &mut rng);
    out.push_str("# EOF\n");
    out
}

/// TCP bytes of ratings to a MongoDB outside the mesh, with the `app` label of the scrape.
fn tcp(out: &mut String, rng: &mut Rng) {
    let edge = Edge {
        from: RATINGS,
        to: wl("bookinfo", "mongodb-v1", "mongodb", "v1"),
        service: "mongodb",
        protocol: "tcp",
        rate: 0.0,
        responses: OK,
        latency: 0.0,
    };
    for reporter in ["source", "destination"] {
        let app = if reporter == "source" {
            "ratings"
        } else {
            "mongodb"
        };
        let labels = with(
            &istio_labels(&edge, reporter),
            &[("app", app), ("response_flags", "-")],
        );
        for name in [
            "istio_tcp_sent_bytes_total",
            "istio_tcp_received_bytes_total",
        ] {
            let mut value = 0.0;
            let points: Vec<(i64, f64)> = times(0)
                .map(|t| {
                    value += (rng.below(50_000) + 1000) as f64;
                    (t, value)
                })
                .collect();
            series(out, name, &labels, &points);
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Series for the edge cases of the query table.
fn edge_cases(out: &mut String, rng: &mut Rng) {
    let base_ms = BASE * 1000;
    let counter = |rng: &mut Rng,
                   jitter: i64,
                   reset_at: &[i64],
                   skip: Option<(i64, i64)>,
                   start_at: i64,
                   start_value: f64| {
        let mut value = start_value;
        let mut points = Vec::new();
        for t in times(jitter) {
            if t < base_ms + start_at * 1000 {
                continue;
            }
            if reset_at
                .iter()
                .any(|r| t >= base_ms + r * 1000 && t < base_ms + r * 1000 + INTERVAL_MS)
            {
                value = (rng.below(5)) as f64;
            } else {
                value += (rng.below(40)) as f64;
            }
            if skip.is_some_and(|(from, to)| t >= base_ms + from * 1000 && t < base_ms + to * 1000)
            {
                continue;
            }
            points.push((t, value));
        }
        points
    };
    // a: on the grid, one reset. b: jittered, two close resets. c: starts late, far from zero.
    // d: a gap longer than the lookback.
    let a = counter(rng, 0, &[900], None, 0, 10.0);
    let b = counter(rng, 7321, &[600, 645], None, 0, 0.0);
    let c = counter(rng, 2500, &[], None, 1200, 5000.0);
    let d = counter(rng, 4000, &[], Some((600, 1260)), 0, 100.0);
    // e: starts mid-window close to zero (30, then +40 a scrape): where rate's zero-point cap
    // and the extrapolation threshold interact, which Prometheus 2.51 reordered.
    let e: Vec<(i64, f64)> = times(0)
        .filter(|t| *t >= base_ms + 1_200_000)
        .enumerate()
        .map(|(k, t)| (t, 30.0 + 40.0 * k as f64))
        .collect();
    for (instance, points) in [("a", a), ("b", b), ("c", c), ("d", d), ("e", e)] {
        series(
            out,
            "edge_reset_total",
            &labels(&[("instance", instance), ("job", "edge")]),
            &points,
        );
    }
    // Special values in a gauge; tiny and huge ones in another.
    let specials = [
        1.0,
        f64::NAN,
        2.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -3.5,
        f64::NAN,
    ];
    let nan: Vec<(i64, f64)> = times(0)
        .enumerate()
        .map(|(k, t)| (t, specials[k % specials.len()]))
        .collect();
    series(out, "edge_gauge", &labels(&[("kind", "special")]), &nan);
    let sizes = [
        1e-9,
        2.5e-7,
        0.000_001_5,
        1e21,
        3.2e22,
        12345.678,
        -4e-8,
        0.1,
    ];
    let plain: Vec<(i64, f64)> = times(3000)
        .enumerate()
        .map(|(k, t)| (t, sizes[k % sizes.len()] * (1.0 + rng.unit())))
        .collect();
    series(out, "edge_gauge", &labels(&[("kind", "sizes")]), &plain);
    // Histograms: complete, without +Inf, with missing buckets, not monotonic, empty, with a
    // negative bound, and with one bound written two ways.
    let cases: [(&str, &[&str]); 7] = [
        ("ok", &["0.1", "0.5", "1", "5", "+Inf"]),
        ("no_inf", &["0.1", "0.5", "1", "5"]),
        ("gaps", &["1", "+Inf"]),
        ("non_monotonic", &["0.1", "0.5", "1", "5", "+Inf"]),
        ("zero", &["0.1", "1", "+Inf"]),
        ("negative", &["-1", "0", "1", "+Inf"]),
        ("coalesce", &["0.5", "1", "1.0", "+Inf"]),
    ];
    for (case, bounds) in cases {
        let mut counts = vec![0.0f64; bounds.len()];
        let mut points = vec![Vec::new(); bounds.len()];
        for (k, t) in times(0).enumerate() {
            let mut running = 0.0;
            for (i, count) in counts.iter_mut().enumerate() {
                if case != "zero" {
                    running += rng.below(6) as f64;
                    *count += running;
                }
                let mut value = *count;
                if case == "non_monotonic" && i == 2 && k % 3 == 0 {
                    value = (value - 40.0).max(0.0);
                }
                points[i].push((t, value));
            }
        }
        for (i, bound) in bounds.iter().enumerate() {
            series(
                out,
                "edge_latency_bucket",
                &labels(&[("case", case), ("le", bound)]),
                &points[i],
            );
        }
    }
    // Two metrics whose labels are the same once the name is gone.
    for name in ["edge_dup_a_total", "edge_dup_b_total"] {
        let mut value = 0.0;
        let points: Vec<(i64, f64)> = times(0)
            .map(|t| {
                value += 1.0;
                (t, value)
            })
            .collect();
        series(out, name, &labels(&[("x", "1")]), &points);
    }
}
