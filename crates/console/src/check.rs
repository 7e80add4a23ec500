//! `GET /api/tracing/diagnose` (the probes of `meshtrace diagnose`, on the configured backend's
//! host) and `POST /api/tracing/check` (try an edited tracing configuration).
//!
//! The check takes Kiali's camelCase JSON (`internalURL`, `useGRPC`, ...) or the YAML key names.
//! Secrets sent back as `xxx` — as the console shows them — are replaced by the live values,
//! for the configured backend only; only the configured backend may be reached, unless the
//! console was started with `--allow-check-any-host` (both rules: [`crate::destination`]).
//! A posted configuration is at most [`MAX_DRAFT`] bytes.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use meshtrace_config::TracingConfig;
use serde_json::{Map, Value};

use crate::Console;
use crate::error::{ApiError, ErrorCode};
use crate::params::pairs;

/// The largest configuration the check and the tester read: a whole Kiali config is a few KiB.
pub const MAX_DRAFT: usize = 64 * 1024;

/// The body of a check, refused with 413 past [`MAX_DRAFT`]: at once when `Content-Length`
/// says so (nothing is read), else as soon as the bytes read pass it.
pub(crate) async fn read_draft(request: Request) -> Result<Bytes, ApiError> {
    let too_large = format!(
        "the configuration is larger than {} KiB: post the tracing section only",
        MAX_DRAFT / 1024
    );
    crate::body::read_limited(request, MAX_DRAFT, &too_large).await
}

/// `GET /api/tracing/diagnose`: Kiali's `TracingDiagnose`.
pub async fn diagnose(
    State(console): State<Arc<Console>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    pairs(raw.as_deref(), &["clusterName"])?;
    let tracing = &console.config.tracing;
    let started = std::time::Instant::now();
    let (diagnosis, message) = diagnose_backend(&console)
        .await
        .map_err(ApiError::bad_request)?;
    let took = format!("{:.0}ms", started.elapsed().as_secs_f64() * 1e3);
    let log: Vec<Value> = diagnosis
        .probes
        .iter()
        .map(|p| {
            serde_json::json!({
                "test": p.test,
                "result": match &p.result { Ok(r) => format!("ok: {r}"), Err(e) => format!("failed: {e}") },
                "time": took,
            })
        })
        .collect();
    let valid: Vec<Value> = diagnosis
        .working
        .iter()
        .map(|w| {
            serde_json::json!({
                "provider": w.provider.as_str(),
                "url": w.internal_url,
                "useGRPC": w.use_grpc,
                "namespaceSelector": tracing.namespace_selector,
                "authType": tracing.auth.kind.as_str(),
                "warning": "",
                "note": w.note,
                "yaml": w.yaml(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        // Kiali's `code`: what the traces routes answer without a working backend, or 200.
        "code": if valid.is_empty() { ErrorCode::Unavailable.status().as_u16() } else { 200 },
        "message": message,
        "logLine": log,
        "validConfig": valid,
    })))
}

/// The probes of `meshtrace diagnose` on the configured backend's host (`internal_url`, else
/// `external_url`), with the live auth and headers, and a one-line summary of what worked.
pub(crate) async fn diagnose_backend(
    console: &Console,
) -> Result<(meshtrace_backend::diagnose::Diagnosis, String), String> {
    let tracing = &console.config.tracing;
    let url = [&tracing.internal_url, &tracing.external_url]
        .into_iter()
        .find(|u| !u.is_empty())
        .ok_or("there is no URL to diagnose: set internal_url")?;
    let diagnosis =
        meshtrace_backend::diagnose::diagnose(url, tracing, &[], &console.options.backend).await?;
    let message = if diagnosis.working.is_empty() {
        format!(
            "no working configuration found for {}",
            meshtrace_config::redact_url(url)
        )
    } else {
        format!(
            "{} working configuration(s) found, best first",
            diagnosis.working.len()
        )
    };
    Ok((diagnosis, message))
}

/// `POST /api/tracing/check`: builds a client from the posted configuration, asks its status
/// and its services. Answers `{error, message}` (error empty on success).
pub async fn check(
    State(console): State<Arc<Console>>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let body = read_draft(request).await?;
    let posted: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be a JSON tracing configuration: {e}"
        ))
    })?;
    let Value::Object(fields) = posted else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object: the tracing configuration",
        ));
    };
    let tracing = parse_tracing(fields)?;
    Ok(Json(match try_config(&console, tracing).await? {
        Ok(message) => serde_json::json!({ "error": "", "message": message }),
        Err(error) => serde_json::json!({
            "error": error,
            "message": "the configuration does not work",
        }),
    }))
}

/// Tries a tracing configuration as the check route and the tester page do: the destinations
/// checked and the live secrets put back for `xxx` where they may go ([`crate::destination`]),
/// then a client built, its status and services asked.
/// `Err` (outer) when the check is refused; inner `Ok` is the success message, `Err` why the
/// configuration does not work.
pub(crate) async fn try_config(
    console: &Console,
    mut tracing: TracingConfig,
) -> Result<Result<String, String>, ApiError> {
    crate::destination::prepare(
        &mut tracing,
        &console.config.tracing,
        console.options.allow_check_any_host,
    )?;
    tracing.enabled = true;
    let started = std::time::Instant::now();
    let outcome = async {
        let backend = meshtrace_backend::connect(&tracing, &console.options.backend)?;
        backend.status().await?;
        let services = backend.services().await?;
        Ok::<_, meshtrace_backend::BackendError>((backend.describe(), services.len()))
    }
    .await;
    console
        .metrics
        .backend_call("ServiceStatus", started.elapsed(), outcome.is_ok());
    Ok(match outcome {
        Ok((backend, services)) => Ok(format!(
            "Success getting service status: {backend} answers, {services} services"
        )),
        Err(error) => Err(error.to_string()),
    })
}

/// The posted fields as a tracing section: keys turned to Kiali's YAML names, then loaded
/// and validated as a config file would be.
fn parse_tracing(fields: Map<String, Value>) -> Result<TracingConfig, ApiError> {
    let section = Value::Object(snake_keys(fields));
    let document = serde_json::json!({ "external_services": { "tracing": section } });
    let loaded = meshtrace_config::load_str(&document.to_string()).map_err(|problems| {
        let listed: Vec<String> = problems
            .iter()
            .filter(|p| p.is_error())
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        ApiError::bad_request("the configuration is not valid").with_detail(listed.join("; "))
    })?;
    Ok(loaded.config.tracing)
}

/// `internalURL` → `internal_url`, recursively, except inside maps whose keys are data
/// (`customHeaders`, `queryScope`).
fn snake_keys(fields: Map<String, Value>) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(key, value)| {
            let key = snake(&key);
            let value = match value {
                Value::Object(inner) if key != "custom_headers" && key != "query_scope" => {
                    Value::Object(snake_keys(inner))
                }
                other => other,
            };
            (key, value)
        })
        .collect()
}

fn snake(key: &str) -> String {
    match key {
        // Kiali's JSON tag differs from its YAML key here.
        "whiteListIstioSystem" => return "whitelist_istio_system".to_string(),
        "inClusterURL" | "inClusterUrl" => return "in_cluster_url".to_string(),
        _ => {}
    }
    let mut out = String::with_capacity(key.len().saturating_add(4));
    let mut previous: Option<char> = None;
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_uppercase() {
            let after_lower =
                previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
            let ends_acronym = previous.is_some_and(|p| p.is_ascii_uppercase())
                && chars.peek().is_some_and(char::is_ascii_lowercase);
            if after_lower || ends_acronym {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake;

    #[test]
    fn kiali_json_names_become_yaml_keys() {
        for (json, yaml) in [
            ("internalURL", "internal_url"),
            ("useGRPC", "use_grpc"),
            ("grpcPort", "grpc_port"),
            ("datasourceUID", "datasource_uid"),
            ("orgID", "org_id"),
            ("tokenURL", "token_url"),
            ("insecureSkipVerify", "insecure_skip_verify"),
            ("whiteListIstioSystem", "whitelist_istio_system"),
            ("internal_url", "internal_url"),
            ("queryTimeout", "query_timeout"),
        ] {
            assert_eq!(snake(json), yaml);
        }
    }
}
