//! The Inbound and Outbound Metrics tabs of app, workload and service pages (Kiali's
//! `IstioMetrics`): the settings in the URL with Kiali's names (`duration`, `refresh`,
//! `reporter`, `quantiles` space-separated, `avg`, `bylbl`, `spans`, `limit`), the charts of
//! Kiali's Istio dashboard drawn from what the metrics route answers for the same request
//! (asked in-process), and the Spans overlay: the spans route's spans on the duration chart,
//! each a link to its trace with the span selected.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use askama::Template;
use meshtrace_mesh::Kind;
use serde_json::Value;

use super::line_chart::{self, Chart, Input, SpanInput, Unit};
use super::view::{LIMITS, RANGES, REFRESH, View};
use super::{Choice, enc, form_fields};
use crate::Console;
use crate::params::TracingParams;
use crate::tracing_api::{TracesRequest, ask, own_spans};

/// Kiali's quantile choices.
const QUANTILES: [&str; 4] = ["0.5", "0.95", "0.99", "0.999"];
/// Kiali's default span limit (traces fetched).
const SPAN_LIMIT: usize = 100;
/// Group-by labels one page may ask for.
const MAX_BY_LABELS: usize = 4;
/// Values one `bylbl` may filter on.
const MAX_LABEL_VALUES: usize = 16;
/// The longest label value kept in a filter.
const MAX_VALUE_LEN: usize = 253;

/// Kiali's dashboard charts: metric, title, unit, the factor from the answer to the unit, and
/// whether the chart shows without data (TCP and gRPC only when there is some).
const CHARTS: [(&str, &str, Unit, f64, bool); 12] = [
    ("request_count", "Request volume", Unit::Ops, 1.0, true),
    (
        "request_duration_millis",
        "Request duration",
        Unit::Seconds,
        0.001,
        true,
    ),
    ("request_size", "Request size", Unit::Bytes, 1.0, true),
    ("response_size", "Response size", Unit::Bytes, 1.0, true),
    (
        "request_throughput",
        "Request throughput",
        Unit::Bitrate,
        8.0,
        true,
    ),
    (
        "response_throughput",
        "Response throughput",
        Unit::Bitrate,
        8.0,
        true,
    ),
    ("grpc_received", "gRPC received", Unit::MsgRate, 1.0, false),
    ("grpc_sent", "gRPC sent", Unit::MsgRate, 1.0, false),
    ("tcp_opened", "TCP opened", Unit::ConnRate, 1.0, false),
    ("tcp_closed", "TCP closed", Unit::ConnRate, 1.0, false),
    ("tcp_received", "TCP received", Unit::Bitrate, 8.0, false),
    ("tcp_sent", "TCP sent", Unit::Bitrate, 8.0, false),
];

/// The labels the "Metrics settings" may group by, with Kiali's names, for each direction
/// (the local side is the target's: `destination_*` inbound, `source_*` outbound).
fn grouping(inbound: bool) -> [(&'static str, &'static str); 6] {
    let (local, remote) = if inbound {
        ("destination", "source")
    } else {
        ("source", "destination")
    };
    let pick = |side: &str, what: &str| -> &'static str {
        match (side, what) {
            ("source", "app") => "source_canonical_service",
            ("source", _) => "source_canonical_revision",
            ("destination", "app") => "destination_canonical_service",
            _ => "destination_canonical_revision",
        }
    };
    [
        ("Local version", pick(local, "version")),
        ("Remote app", pick(remote, "app")),
        ("Remote version", pick(remote, "version")),
        ("Response code", "response_code"),
        ("Request protocol", "request_protocol"),
        ("Response flags", "response_flags"),
    ]
}

/// The tab's settings, checked.
struct Settings {
    reporter: String,
    quantiles: Vec<&'static str>,
    avg: bool,
    spans: bool,
    limit: usize,
    /// Label names, each with the values kept (empty: all).
    by_labels: Vec<(&'static str, Vec<String>)>,
}

/// A bad setting: the parameter and why.
type Bad = (String, String);

fn parse_settings(raw: &str, inbound: bool) -> Result<Settings, Bad> {
    let mut s = Settings {
        reporter: if inbound { "destination" } else { "source" }.to_string(),
        quantiles: Vec::new(),
        avg: true,
        spans: false,
        limit: SPAN_LIMIT,
        by_labels: Vec::new(),
    };
    let flag = |name: &str, value: &str| match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err((name.to_string(), "must be true or false".to_string())),
    };
    let labels = grouping(inbound);
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "reporter" => {
                if !["source", "destination", "both"].contains(&value.as_ref()) {
                    return Err((key.into(), "must be source, destination or both".into()));
                }
                s.reporter = value.into_owned();
            }
            // Kiali's form is one space-separated value; the page's form sends one a box.
            "quantiles" => {
                for q in value.split(' ').filter(|q| !q.is_empty()) {
                    let known = QUANTILES.iter().find(|k| **k == q).ok_or_else(|| {
                        (
                            key.to_string(),
                            format!("must be quantiles among {}", QUANTILES.join(" ")),
                        )
                    })?;
                    if !s.quantiles.contains(known) {
                        s.quantiles.push(known);
                    }
                }
            }
            "avg" => s.avg = flag(&key, &value)?,
            "spans" => s.spans = flag(&key, &value)?,
            "limit" => {
                s.limit = value
                    .parse()
                    .ok()
                    .filter(|l| LIMITS.contains(l))
                    .ok_or_else(|| (key.to_string(), format!("must be one of {LIMITS:?}")))?;
            }
            "duration" if !RANGES.iter().any(|r| r.0.to_string() == value) => {
                return Err((key.into(), "must be one of the offered time ranges".into()));
            }
            "refresh" if !REFRESH.iter().any(|r| r.0.to_string() == value) => {
                return Err((
                    key.into(),
                    "must be one of the offered refresh intervals".into(),
                ));
            }
            "bylbl" => {
                let (name, values) = value.split_once('=').unwrap_or((&value, ""));
                let label = labels
                    .iter()
                    .find(|(_, l)| *l == name)
                    .map(|(_, l)| *l)
                    .ok_or_else(|| {
                        (
                            key.to_string(),
                            "must name one of the labels offered".to_string(),
                        )
                    })?;
                let values: Vec<String> = values
                    .split(',')
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect();
                if values.len() > MAX_LABEL_VALUES || values.iter().any(|v| v.len() > MAX_VALUE_LEN)
                {
                    return Err((key.into(), "has too many or too long values".into()));
                }
                if !s.by_labels.iter().any(|(l, _)| *l == label) {
                    s.by_labels.push((label, values));
                }
                if s.by_labels.len() > MAX_BY_LABELS {
                    return Err((key.into(), format!("may be given {MAX_BY_LABELS} times")));
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

/// What the tab needs from the page.
pub(super) struct MetricsRequest<'a> {
    pub console: &'a Console,
    pub view: &'a View,
    pub raw: &'a str,
    pub kind: Kind,
    pub namespace: &'a str,
    pub name: &'a str,
    pub inbound: bool,
    /// The page's URL without a query, and the tab's value there.
    pub base: &'a str,
    pub tab: &'static str,
    pub root: &'a str,
}

/// What the metrics tab shows; the detail page embeds it.
#[derive(Template)]
#[template(path = "metrics_tab.html")]
pub(super) struct MetricsTab {
    pub direction: &'static str,
    /// A bad parameter: which and why (the page answers 400).
    pub bad: Option<Bad>,
    /// The metrics source when it could not answer: which and why.
    pub source_error: Option<String>,
    pub spans_error: Option<String>,
    pub fields: Vec<(String, String)>,
    pub reporters: Vec<Choice>,
    pub quantiles: Vec<Choice>,
    pub avg: bool,
    pub spans: bool,
    pub limits: Vec<Choice>,
    pub labels: Vec<Choice>,
    pub refresh_href: String,
    /// The metrics route's URL for the same request, and the spans route's.
    pub api_url: String,
    pub spans_url: String,
    pub span_count: usize,
    pub charts: Vec<Chart>,
}

/// Kiali's step for a window: ⌊duration / 50⌋, at least twice the scrape interval (15 s).
fn step(duration: u64) -> u64 {
    (duration / 50).max(30)
}

pub(super) async fn metrics_tab(r: MetricsRequest<'_>) -> MetricsTab {
    let settings = parse_settings(r.raw, r.inbound);
    let mut tab = MetricsTab {
        direction: if r.inbound { "inbound" } else { "outbound" },
        bad: None,
        source_error: None,
        spans_error: None,
        fields: form_fields(&r.view.query(&[("tab", Some(r.tab.to_string()))]))
            .into_iter()
            .filter(|(k, _)| k != "limit")
            .collect(),
        reporters: Vec::new(),
        quantiles: Vec::new(),
        avg: true,
        spans: false,
        limits: Vec::new(),
        labels: Vec::new(),
        refresh_href: String::new(),
        api_url: String::new(),
        spans_url: String::new(),
        span_count: 0,
        charts: Vec::new(),
    };
    let s = match settings {
        Ok(s) => s,
        Err(bad) => {
            tab.bad = Some(bad);
            return tab;
        }
    };
    tab.reporters = ["source", "destination", "both"]
        .iter()
        .map(|v| Choice::new(v, &capital(v), s.reporter == *v))
        .collect();
    tab.quantiles = QUANTILES
        .iter()
        .map(|q| Choice::new(q, &quantile_label(q), s.quantiles.contains(q)))
        .collect();
    tab.limits = LIMITS
        .iter()
        .map(|l| Choice::new(&l.to_string(), &format!("{l} traces"), *l == s.limit))
        .collect();
    tab.labels = grouping(r.inbound)
        .iter()
        .map(|(text, l)| Choice::new(l, text, s.by_labels.iter().any(|(b, _)| b == l)))
        .collect();
    tab.avg = s.avg;
    tab.spans = s.spans;
    tab.refresh_href = format!("{}?{}", r.base, r.raw);

    let (start_us, end_us) = r.view.window();
    let end = end_us / 1_000_000;
    let duration = (end_us.saturating_sub(start_us) / 1_000_000).max(1);
    let query = metrics_query(&s, tab.direction, duration, end);
    let kind = match r.kind {
        Kind::App => "app",
        Kind::Workload => "workload",
        Kind::Service => "service",
    };
    let item = format!(
        "{}/api/namespaces/{}/{}s/{}",
        r.root,
        enc(r.namespace),
        kind,
        enc(r.name)
    );
    tab.api_url = format!("{item}/metrics?{query}");
    let answer =
        crate::metrics_api::item_metrics_map(r.console, r.namespace, kind, r.name, &query).await;
    let map = match answer {
        Ok(map) => map,
        Err(e) => {
            tab.source_error = Some(format!("{}: {}", source_name(r.console), e.error));
            return tab;
        }
    };

    let mut spans = Vec::new();
    if s.spans {
        tab.spans_url = format!(
            "{item}/spans?startMicros={start_us}&endMicros={end_us}&limit={}",
            s.limit
        );
        match span_inputs(&r, start_us, end_us, s.limit).await {
            Ok(list) => spans = list,
            Err(e) => tab.spans_error = Some(e),
        }
        tab.span_count = spans.len();
    }
    #[allow(clippy::cast_precision_loss)]
    let window = (end.saturating_sub(duration) as f64, end as f64);
    for (metric, title, unit, factor, always) in CHARTS {
        let inputs = series(&map, metric, factor, &s.by_labels);
        let overlay: &[SpanInput] = if metric == "request_duration_millis" {
            &spans
        } else {
            &[]
        };
        let chart = line_chart::chart((metric, title, unit), window, inputs, overlay);
        if always || !chart.empty {
            tab.charts.push(chart);
        }
    }
    tab
}

/// The metrics route's query string for the settings over the window (Kiali's UI: the step
/// from the duration, the rate interval the step, the query time the window's end).
fn metrics_query(s: &Settings, direction: &str, duration: u64, end: u64) -> String {
    let step = step(duration);
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (metric, ..) in CHARTS {
        query.append_pair("filters[]", metric);
    }
    query
        .append_pair("direction", direction)
        .append_pair("reporter", &s.reporter)
        .append_pair("duration", &duration.to_string())
        .append_pair("step", &step.to_string())
        .append_pair("rateInterval", &format!("{step}s"))
        .append_pair("queryTime", &end.to_string())
        .append_pair("avg", if s.avg { "true" } else { "false" });
    for q in &s.quantiles {
        query.append_pair("quantiles[]", q);
    }
    for (label, _) in &s.by_labels {
        query.append_pair("byLabels[]", label);
    }
    // Kiali groups by reporter when both report.
    if s.reporter == "both" {
        query.append_pair("byLabels[]", "reporter");
    }
    query.finish()
}

fn capital(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `0.95` → `p95`, `0.999` → `p99.9`, `0.5` → `p50`.
fn quantile_label(q: &str) -> String {
    let digits = q.trim_start_matches("0.");
    let (whole, rest) = (
        digits.get(..2).unwrap_or(digits),
        digits.get(2..).unwrap_or(""),
    );
    let whole = if whole.len() == 1 {
        format!("{whole}0")
    } else {
        whole.to_string()
    };
    if rest.is_empty() {
        format!("p{whole}")
    } else {
        format!("p{whole}.{rest}")
    }
}

fn source_name(console: &Console) -> String {
    match console.prometheus() {
        Ok(client) => format!("Metrics from {} are unavailable", client.describe()),
        Err(_) => "No metrics source (external_services.prometheus)".to_string(),
    }
}

/// The series of `metric` in a `MetricsMap`, scaled to the chart's unit, labelled by stat and
/// grouping labels, kept when they match the `bylbl` value filters.
fn series(
    map: &Value,
    metric: &str,
    factor: f64,
    by_labels: &[(&'static str, Vec<String>)],
) -> Vec<Input> {
    let list = map.get(metric).and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .filter(|m| {
            by_labels.iter().all(|(label, values)| {
                values.is_empty()
                    || m.get("labels")
                        .and_then(|l| l.get(*label))
                        .and_then(Value::as_str)
                        .is_some_and(|v| values.iter().any(|w| w == v))
            })
        })
        .map(|m| {
            let mut parts = Vec::new();
            if let Some(stat) = m.get("stat").and_then(Value::as_str) {
                parts.push(if stat == "avg" {
                    "avg".to_string()
                } else {
                    quantile_label(stat)
                });
            }
            if let Some(labels) = m.get("labels").and_then(Value::as_object) {
                parts.extend(
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
                );
            }
            let label = if parts.is_empty() {
                metric.to_string()
            } else {
                parts.join(" ")
            };
            let points = m
                .get("datapoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let t = p.get(0)?.as_f64()?;
                    let v: f64 = p.get(1)?.as_str()?.parse().ok()?;
                    Some((t, v * factor))
                })
                .collect();
            Input { label, points }
        })
        .collect()
}

/// The spans route's spans for the window and limit, as overlay points.
async fn span_inputs(
    r: &MetricsRequest<'_>,
    start: u64,
    end: u64,
    limit: usize,
) -> Result<Vec<SpanInput>, String> {
    let request = TracesRequest {
        namespace: r.namespace.to_string(),
        kind: r.kind,
        name: r.name.to_string(),
        params: TracingParams {
            start,
            end,
            limit,
            min_duration: None,
            tags: Default::default(),
            cluster: None,
        },
    };
    let asked = ask(r.console, request)
        .await
        .map_err(|e| format!("the spans could not be read: {}", e.error))?;
    #[allow(clippy::cast_precision_loss)]
    Ok(own_spans(&asked)
        .map(|(_, span)| {
            let trace_id = span.trace_id.to_hex32();
            let span_id = span.span_id.to_string();
            let method = span
                .tag("http.method")
                .map(|m| format!("[{}] ", m.as_text()))
                .unwrap_or_default();
            SpanInput {
                start: span.start_time as f64 / 1e6,
                duration: span.duration as f64 / 1e6,
                error: span.has_error(),
                href: format!("{}/console/traces/{trace_id}?uiFind={span_id}", r.root),
                title: format!(
                    "{method}{} — {}",
                    span.operation_name,
                    super::view::format_duration(span.duration)
                ),
                trace_id,
                span_id,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_kialis_and_bad_ones_are_named() {
        let s = parse_settings(
            "reporter=both&quantiles=0.5+0.99&avg=false&spans=true",
            true,
        );
        let s = s.ok().unwrap_or_else(|| panic!("valid"));
        assert_eq!(s.reporter, "both");
        assert_eq!(s.quantiles, ["0.5", "0.99"]);
        assert!(!s.avg && s.spans);
        for (raw, name) in [
            ("reporter=%3Cb%3E", "reporter"),
            ("quantiles=0.7", "quantiles"),
            ("limit=7", "limit"),
            ("duration=5", "duration"),
            ("bylbl=__name__", "bylbl"),
            ("spans=yes", "spans"),
        ] {
            let bad = parse_settings(raw, false).err().map(|b| b.0);
            assert_eq!(bad.as_deref(), Some(name), "{raw}");
        }
        assert_eq!(quantile_label("0.999"), "p99.9");
        assert_eq!(quantile_label("0.5"), "p50");
    }
}
