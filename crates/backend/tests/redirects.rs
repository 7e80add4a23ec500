//! Redirects (issue 13, hostile input): a backend, or a gateway in front of it, that redirects
//! the console elsewhere must not take the configured credentials and custom headers with it.
//! Redirects within the backend's own origin are still followed.

mod common;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Redirect};
use meshtrace_backend::TracingBackend;

const SECRET: &str = "hdr-S3cr3t";

/// A server that records the headers of every request it gets and answers an empty service list.
async fn recorder() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let log = log.clone();
        async move {
            let text: Vec<String> = headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            log.lock().unwrap().push(text.join("\n"));
            axum::Json(serde_json::json!({"data": [], "total": 0, "limit": 0, "offset": 0, "errors": null}))
        }
    });
    let address = meshtrace_testkit::http::serve(app).await;
    (format!("http://{address}"), seen)
}

/// A backend that redirects every request to `target` + the same path, except paths under
/// `/moved/`, which it answers itself (recording them).
async fn redirector(target: Option<String>) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let log = log.clone();
        let target = target.clone();
        async move {
            if uri.path().starts_with("/moved/") {
                log.lock()
                    .unwrap()
                    .push(format!("{uri} {:?}", headers.get("x-api-key")));
                return axum::Json(serde_json::json!({"data": ["svc"], "total": 1, "limit": 0, "offset": 0, "errors": null}))
                    .into_response();
            }
            let base = target.unwrap_or_default();
            Redirect::temporary(&format!("{base}/moved{}", uri.path())).into_response()
        }
    });
    let address = meshtrace_testkit::http::serve(app).await;
    (format!("http://{address}"), seen)
}

fn backend(internal_url: &str) -> Box<dyn TracingBackend> {
    let extra = format!(
        "    query_timeout: 3\n    custom_headers:\n      X-Api-Key: {SECRET}\n    auth:\n      type: basic\n      username: kiali\n      password: pw-{SECRET}\n"
    );
    common::tracing_backend("jaeger", false, internal_url, &extra)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_origin_is_not_followed_with_the_credentials() {
    let (elsewhere, received) = recorder().await;
    let (url, _) = redirector(Some(elsewhere)).await;
    let error = backend(&url).services().await.unwrap_err().to_string();
    assert!(
        received.lock().unwrap().is_empty(),
        "the other origin was called: {:?}",
        received.lock().unwrap()
    );
    assert!(error.contains("307"), "the redirect is reported: {error}");
    assert!(!error.contains(SECRET), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_within_the_backend_is_followed() {
    let (url, seen) = redirector(None).await;
    let services = backend(&url).services().await.unwrap();
    assert_eq!(services, vec!["svc".to_string()]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].contains(SECRET),
        "same origin keeps its headers: {seen:?}"
    );
}
