//! `GET /api/tracing/diagnose` (the probes of `meshtrace diagnose`, on the configured backend's
//! host) and `POST /api/tracing/check` (try an edited tracing configuration).
//!
//! The check takes Kiali's camelCase JSON (`internalURL`, `useGRPC`, ...) or the YAML key names.
//! Secrets sent back as `xxx` — as the console shows them — are replaced by the live values.
//! Only the configured backend's host may be probed, unless the console was started with
//! `--allow-check-any-host`: the route is not a way to reach arbitrary hosts from the server.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use meshtrace_config::{Credential, TracingConfig};
use serde_json::{Map, Value};

use crate::Console;
use crate::error::ApiError;
use crate::params::pairs;

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
        "code": if valid.is_empty() { 503 } else { 200 },
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
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
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

/// Tries a tracing configuration as the check route and the tester page do: live secrets put
/// back for `xxx`, the host checked, then a client built, its status and services asked.
/// `Err` (outer) when the check is refused; inner `Ok` is the success message, `Err` why the
/// configuration does not work.
pub(crate) async fn try_config(
    console: &Console,
    mut tracing: TracingConfig,
) -> Result<Result<String, String>, ApiError> {
    restore_secrets(&mut tracing, &console.config.tracing);
    if !console.options.allow_check_any_host {
        allowed_host(&tracing, &console.config.tracing)?;
    }
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
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::with_capacity(key.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let after_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let ends_acronym = i > 0
                && chars[i - 1].is_ascii_uppercase()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if after_lower || ends_acronym {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

/// Puts the live secrets back where the posted config holds the `xxx` it was shown.
fn restore_secrets(posted: &mut TracingConfig, live: &TracingConfig) {
    let pairs: [(&mut Credential, &Credential); 6] = [
        (&mut posted.auth.username, &live.auth.username),
        (&mut posted.auth.password, &live.auth.password),
        (&mut posted.auth.token, &live.auth.token),
        (&mut posted.auth.cert_file, &live.auth.cert_file),
        (&mut posted.auth.key_file, &live.auth.key_file),
        (
            &mut posted.auth.oauth2.client_secret,
            &live.auth.oauth2.client_secret,
        ),
    ];
    for (posted, live) in pairs {
        if posted.is_obfuscated() {
            *posted = live.clone();
        }
    }
    for (name, value) in posted.custom_headers.iter_mut() {
        if value == meshtrace_config::OBFUSCATED
            && let Some(live) = live.custom_headers.get(name)
        {
            *value = live.clone();
        }
    }
}

/// Refuses a check aimed at another host than the configured backend's.
fn allowed_host(posted: &TracingConfig, live: &TracingConfig) -> Result<(), ApiError> {
    let host = |u: &str| {
        url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
    };
    let allowed: Vec<String> = [&live.internal_url, &live.external_url]
        .into_iter()
        .filter_map(|u| host(u))
        .collect();
    let wanted = host(&posted.internal_url)
        .ok_or_else(|| ApiError::bad_request("internalURL must be an http or https URL"))?;
    if allowed.contains(&wanted) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "only the configured backend's host may be checked (`{wanted}` is not among {}); \
                 start the console with --allow-check-any-host to check others",
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            ),
        ))
    }
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
