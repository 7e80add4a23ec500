//! The flags that bound what a client may hold on a listener, shared by `store` and `serve`.

use std::time::Duration;

use clap::Args;
use meshtrace_listen::Limits;
use meshtrace_model::time::parse_go_duration_std;

#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// How long a client has to send a request's head (Go duration); also how long an idle
    /// keep-alive HTTP connection is kept.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    pub header_timeout: Duration,
    /// How long a client has to send a request's body after its head (408 after that); also
    /// the longest a gRPC export may take.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_timeout)]
    pub body_timeout: Duration,
    /// How long a gRPC connection may stay silent before it is closed (the server pings at half
    /// this period).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_timeout)]
    pub idle_timeout: Duration,
    /// The most connections open at once on each listener; more wait until one closes.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
}

impl ListenArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_go_duration_std(text)? {
        Duration::ZERO => Err("a timeout must be longer than zero".to_string()),
        timeout => Ok(timeout),
    }
}
