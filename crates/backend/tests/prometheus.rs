//! The Prometheus client over the wire: against a real Prometheus (Debian's package, started
//! here over promtool blocks) and against meshtrace's own `/prometheus` API over the same
//! samples; through nginx with TLS and auth; against servers that are slow, huge, not
//! Prometheus, or echo secrets.

#[path = "prometheus/agree.rs"]
mod agree;
#[path = "prometheus/auth.rs"]
mod auth;
#[path = "prometheus/diagnose.rs"]
mod diagnose;
#[path = "prometheus/failures.rs"]
mod failures;
#[path = "proxy/nginx.rs"]
mod nginx;
#[path = "prometheus/support.rs"]
mod support;
