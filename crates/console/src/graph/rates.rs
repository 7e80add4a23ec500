//! The rates Kiali keeps per protocol (`graph/protocol.go`): what a request adds to its edge
//! (total, no response, 3xx/4xx/5xx or gRPC errors, the responses by code, flags and host) and
//! to its two nodes (`…Out` at the source, `…In` and its error kinds at the destination), and
//! how a rate is written (`rateToString`).

use std::collections::BTreeMap;

use super::traffic::Edge;

/// How an edge rate counts when the edge is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Total,
    Error,
    Plain,
}

/// One protocol's rate names.
pub struct Protocol {
    pub name: &'static str,
    /// Edge rates in Kiali's order.
    pub edge: &'static [(&'static str, Kind)],
    pub percent_err: Option<&'static str>,
    pub percent_req: Option<&'static str>,
    /// Node rates in Kiali's order.
    pub node: &'static [&'static str],
    pub node_out: &'static str,
}

/// Kiali's protocols, in the order it writes them.
pub const PROTOCOLS: [Protocol; 3] = [
    Protocol {
        name: "grpc",
        edge: &[
            ("grpc", Kind::Total),
            ("grpcNoResponse", Kind::Error),
            ("grpcErr", Kind::Error),
        ],
        percent_err: Some("grpcPercentErr"),
        percent_req: Some("grpcPercentReq"),
        node: &["grpcIn", "grpcInNoResponse", "grpcInErr", "grpcOut"],
        node_out: "grpcOut",
    },
    Protocol {
        name: "http",
        edge: &[
            ("http", Kind::Total),
            ("httpNoResponse", Kind::Error),
            ("http3xx", Kind::Plain),
            ("http4xx", Kind::Error),
            ("http5xx", Kind::Error),
        ],
        percent_err: Some("httpPercentErr"),
        percent_req: Some("httpPercentReq"),
        node: &[
            "httpIn",
            "httpInNoResponse",
            "httpIn3xx",
            "httpIn4xx",
            "httpIn5xx",
            "httpOut",
        ],
        node_out: "httpOut",
    },
    Protocol {
        name: "tcp",
        edge: &[("tcp", Kind::Total)],
        percent_err: None,
        percent_req: None,
        node: &["tcpIn", "tcpOut"],
        node_out: "tcpOut",
    },
];

/// The protocol of a `request_protocol` label, as a static name.
pub fn protocol(label: &str) -> Option<&'static str> {
    PROTOCOLS.iter().map(|p| p.name).find(|n| *n == label)
}

fn add(rates: &mut BTreeMap<&'static str, f64>, key: &'static str, value: f64) {
    if value > 0.0 {
        *rates.entry(key).or_insert(0.0) += value;
    }
}

fn grpc_error(code: &str) -> bool {
    if code.len() == 3 {
        code.starts_with('4') || code.starts_with('5')
    } else {
        code != "0" && !code.is_empty()
    }
}

/// The error kind of a response, as a suffix of the rate names (`NoResponse`, `3xx`, ...).
fn kind_of(protocol: &str, code: &str) -> Option<&'static str> {
    match protocol {
        "http" if code == "-" => Some("NoResponse"),
        "http" if code.starts_with('3') => Some("3xx"),
        "http" if code.starts_with('4') => Some("4xx"),
        "http" if code.starts_with('5') => Some("5xx"),
        "grpc" if code == "-" => Some("NoResponse"),
        "grpc" if grpc_error(code) => Some("Err"),
        _ => None,
    }
}

/// What a request adds to its edge.
pub fn add_edge(
    edge: &mut Edge,
    protocol: &'static str,
    value: f64,
    code: &str,
    flags: &str,
    host: &str,
) {
    add(&mut edge.rates, protocol, value);
    // The response is filed under `-` without a code; its kind is judged on the code itself
    // (gRPC messages have none, and are no error).
    let filed = if protocol == "tcp" || code.is_empty() {
        "-"
    } else {
        code
    };
    let (by_flags, by_host) = edge.responses.0.entry(filed.to_string()).or_default();
    if !flags.is_empty() {
        *by_flags.entry(flags.to_string()).or_insert(0.0) += value;
    }
    if !host.is_empty() {
        *by_host.entry(host.to_string()).or_insert(0.0) += value;
    }
    if let Some(kind) = kind_of(protocol, code) {
        add(&mut edge.rates, edge_key(protocol, kind), value);
    }
}

fn edge_key(protocol: &str, kind: &str) -> &'static str {
    match (protocol, kind) {
        ("http", "NoResponse") => "httpNoResponse",
        ("http", "3xx") => "http3xx",
        ("http", "4xx") => "http4xx",
        ("http", "5xx") => "http5xx",
        ("grpc", "NoResponse") => "grpcNoResponse",
        _ => "grpcErr",
    }
}

fn in_key(protocol: &str, kind: &str) -> &'static str {
    match (protocol, kind) {
        ("http", "NoResponse") => "httpInNoResponse",
        ("http", "3xx") => "httpIn3xx",
        ("http", "4xx") => "httpIn4xx",
        ("http", "5xx") => "httpIn5xx",
        ("grpc", "NoResponse") => "grpcInNoResponse",
        _ => "grpcInErr",
    }
}

fn out_key(protocol: &str) -> &'static str {
    match protocol {
        "grpc" => "grpcOut",
        "tcp" => "tcpOut",
        _ => "httpOut",
    }
}

/// What a request adds to its source node.
pub fn add_out(rates: &mut BTreeMap<&'static str, f64>, protocol: &str, value: f64) {
    add(rates, out_key(protocol), value);
}

/// What a request adds to its destination node.
pub fn add_in(rates: &mut BTreeMap<&'static str, f64>, protocol: &str, value: f64, code: &str) {
    let key = match protocol {
        "grpc" => "grpcIn",
        "tcp" => "tcpIn",
        _ => "httpIn",
    };
    add(rates, key, value);
    if protocol != "tcp"
        && let Some(kind) = kind_of(protocol, code)
    {
        add(rates, in_key(protocol, kind), value);
    }
}

/// Kiali's `AddOutgoingEdgeToMetadata`: an edge's totals added to its source's `…Out`.
pub fn add_outgoing_edge(rates: &mut BTreeMap<&'static str, f64>, edge: &Edge) {
    for p in &PROTOCOLS {
        if let Some(v) = edge.rates.get(p.name) {
            add(rates, p.node_out, *v);
        }
    }
}

/// Kiali's `ResetOutgoingMetadata`.
pub fn reset_out(rates: &mut BTreeMap<&'static str, f64>) {
    for p in &PROTOCOLS {
        rates.remove(p.node_out);
    }
}

/// Kiali's `AggregateEdgeTraffic`: `from`'s rates and responses added to `to`.
pub fn aggregate_edge(from: &Edge, to: &mut Edge) {
    let Some(p) = PROTOCOLS.iter().find(|p| p.name == from.protocol) else {
        return;
    };
    for (key, _) in p.edge {
        if let Some(v) = from.rates.get(key) {
            add(&mut to.rates, key, *v);
        }
    }
    for (code, (flags, hosts)) in &from.responses.0 {
        let (to_flags, to_hosts) = to.responses.0.entry(code.clone()).or_default();
        for (f, v) in flags {
            *to_flags.entry(f.clone()).or_insert(0.0) += v;
        }
        for (h, v) in hosts {
            *to_hosts.entry(h.clone()).or_insert(0.0) += v;
        }
    }
}

/// Kiali's `rateToString`: at least `min` decimals, more (up to 5) until one significant
/// digit shows.
pub fn rate_string(min: usize, value: f64) -> String {
    let mut needed = 0usize;
    let mut v = value;
    while v > 0.0 && v < 1.0 && needed < 5 {
        v *= 10.0;
        needed = needed.saturating_add(1);
    }
    format!("{value:.*}", min.max(needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_show_a_significant_digit() {
        assert_eq!(rate_string(2, 50.0), "50.00");
        assert_eq!(rate_string(2, 0.05), "0.05");
        assert_eq!(rate_string(2, 0.004), "0.004");
        assert_eq!(rate_string(2, 0.0000012), "0.00000");
        assert_eq!(rate_string(2, 1.005), "1.00");
    }
}
