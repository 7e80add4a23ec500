//! The trace store's listener addresses, declared once for `store` and `demo`, and how an
//! address is written on the command line.

use std::net::{SocketAddr, ToSocketAddrs};

use clap::{Arg, Args};
use meshtrace_store::server::Addresses;

#[derive(Debug, Clone, Args)]
pub struct StoreAddressArgs {
    /// OTLP/gRPC ingest address (`host:port`, or `:port` for every interface).
    #[arg(long, value_name = "ADDR", default_value = ":4317", value_parser = parse_addr)]
    pub otlp_grpc: SocketAddr,
    /// OTLP/HTTP ingest address (POST /v1/traces).
    #[arg(long, value_name = "ADDR", default_value = ":4318", value_parser = parse_addr)]
    pub otlp_http: SocketAddr,
    /// Zipkin v2 ingest address (POST /api/v2/spans).
    #[arg(long, value_name = "ADDR", default_value = ":9411", value_parser = parse_addr)]
    pub zipkin: SocketAddr,
    /// Jaeger query HTTP API address (/api/*, /api/v3/*).
    #[arg(long, value_name = "ADDR", default_value = ":16686", value_parser = parse_addr)]
    pub query_http: SocketAddr,
    /// Jaeger gRPC query API address (jaeger.api_v2 and api_v3 QueryService, health).
    #[arg(long, value_name = "ADDR", default_value = ":16685", value_parser = parse_addr)]
    pub query_grpc: SocketAddr,
}

impl StoreAddressArgs {
    pub fn addresses(&self) -> Addresses {
        Addresses {
            otlp_grpc: self.otlp_grpc,
            otlp_http: self.otlp_http,
            zipkin: self.zipkin,
            query_http: self.query_http,
            query_grpc: self.query_grpc,
        }
    }
}

/// For a command that runs everything on this machine (`demo`): an address flag whose default
/// is every interface (`:4317`) defaults to loopback instead (`127.0.0.1:4317`). Other flags are
/// left as they are.
pub fn on_loopback(arg: Arg) -> Arg {
    let port = arg
        .get_default_values()
        .first()
        .and_then(|value| value.to_str())
        .and_then(|value| value.strip_prefix(':'))
        .map(str::to_string);
    match port {
        Some(port) => arg.default_value(format!("127.0.0.1:{port}")),
        None => arg,
    }
}

/// `host:port`, or `:port` (every interface, as Jaeger writes it).
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_string()
    };
    full.to_socket_addrs()
        .map_err(|e| format!("`{text}` is not a host:port address ({e})"))?
        .next()
        .ok_or_else(|| format!("`{text}` resolves to no address"))
}
