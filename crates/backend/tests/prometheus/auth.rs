//! The client through a real nginx in front of both servers, as production setups put one:
//! TLS with a CA made by the test and Basic auth (password read from a file) in front of
//! meshtrace's API; a bearer token (literal, from a file, and the service-account token of
//! `use_kiali_token`) and a header nginx insists on in front of the real Prometheus. What goes
//! wrong is said precisely, without a secret.

use meshtrace_backend::prometheus::{ErrorKind, Expr, PrometheusOptions, Selector, Value};
use meshtrace_testkit::prometheus::RealPrometheus;

use crate::nginx::{Nginx, Pki, free_ports};
use crate::support::{Ours, at, client_with, openmetrics, try_client};

const PASSWORD: &str = "pw-SECRET";
const TOKEN: &str = "tok-SECRET";

fn assert_no_secret(message: &str) {
    assert!(!message.contains("SECRET"), "a secret leaked: {message}");
}

/// One query that must find the 8 request series.
async fn answers(client: &meshtrace_backend::prometheus::PrometheusClient) {
    let expr = Expr::vector(Selector::metric("istio_requests_total").unwrap());
    let answer = client
        .query(&expr, Some(at(300)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let Value::Vector(samples) = answer.value else {
        panic!()
    };
    assert_eq!(samples.len(), 8, "{}", client.describe());
    client.buildinfo().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_with_tls_basic_auth_bearer_tokens_and_custom_headers() {
    let real = RealPrometheus::start(&openmetrics()).await;
    let ours = Ours::start().await;
    let pki = Pki::new();
    std::fs::write(pki.path("htpasswd"), format!("kiali:{{PLAIN}}{PASSWORD}\n")).unwrap();
    std::fs::write(pki.path("password"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(pki.path("token"), TOKEN).unwrap();
    let [basic, bearer] = free_ports();
    let servers = format!(
        r#"
  server {{
    listen 127.0.0.1:{basic} ssl;
    ssl_certificate {cert}; ssl_certificate_key {key};
    location / {{
      auth_basic "prometheus";
      auth_basic_user_file {htpasswd};
      proxy_pass http://{ours};
    }}
  }}
  server {{
    listen 127.0.0.1:{bearer};
    location / {{
      if ($http_authorization != "Bearer {TOKEN}") {{ return 401; }}
      if ($http_x_scope != "mesh") {{ return 403; }}
      proxy_pass http://{real};
    }}
  }}
"#,
        cert = pki.path("server.pem").display(),
        key = pki.path("server.key").display(),
        htpasswd = pki.path("htpasswd").display(),
        ours = ours.addr,
        real = real.addr,
    );
    let _nginx = Nginx::start(&servers, &[basic, bearer]).await;
    let options = PrometheusOptions::default();
    let ca = format!("      ca_file: {}\n", pki.path("ca.pem").display());

    // Basic auth over TLS with the test CA, the password read from a file.
    let tls_url = format!("https://localhost:{basic}/prometheus");
    let basic_auth = format!(
        "    auth:\n      type: basic\n      username: kiali\n      password: {}\n{ca}",
        pki.path("password").display()
    );
    answers(&client_with(&tls_url, &basic_auth, &options)).await;

    // A bearer token, literal and from a file, and the custom header.
    let header = "    custom_headers:\n      X-Scope: mesh\n";
    let url = format!("http://127.0.0.1:{bearer}");
    let literal = format!("    auth:\n      type: bearer\n      token: {TOKEN}\n{header}");
    answers(&client_with(&url, &literal, &options)).await;
    let file = format!(
        "    auth:\n      type: bearer\n      token: {}\n{header}",
        pki.path("token").display()
    );
    answers(&client_with(&url, &file, &options)).await;
    // use_kiali_token: the service account's token instead of `token`.
    let kiali_token =
        format!("    auth:\n      type: bearer\n      use_kiali_token: true\n{header}");
    let sa = PrometheusOptions {
        service_account_token: pki.path("token"),
        ..PrometheusOptions::default()
    };
    answers(&client_with(&url, &kiali_token, &sa)).await;

    // A wrong password, a wrong token, a missing header: refused, said, no secret.
    let query = Expr::vector(Selector::metric("up").unwrap());
    std::fs::write(pki.path("password"), "wrong-SECRET").unwrap();
    let e = client_with(&tls_url, &basic_auth, &options)
        .query(&query, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized(401), "{e}");
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "Prometheus at https://localhost:{basic}/prometheus refused the credentials (HTTP 401)"
        )),
        "{message}"
    );
    assert!(
        message.contains("external_services.prometheus.auth"),
        "{message}"
    );
    assert_no_secret(&message);

    let wrong = literal.replace(TOKEN, "bad-SECRET");
    let e = client_with(&url, &wrong, &options)
        .query(&query, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized(401));
    assert_no_secret(&e.to_string());
    let no_header = literal.replace(header, "");
    let e = client_with(&url, &no_header, &options)
        .query(&query, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized(403), "{e}");

    // A token file that is gone: the file is named, nothing is sent.
    let gone = format!("    auth:\n      type: bearer\n      token: /no/such/token\n{header}");
    let e = client_with(&url, &gone, &options)
        .query(&query, None)
        .await
        .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Credentials(_)), "{e}");
    assert!(e.to_string().contains("`/no/such/token`"), "{e}");

    // TLS without the CA: the certificate is refused and the message says what to set.
    let no_ca = basic_auth.replace(&ca, "");
    let e = client_with(&tls_url, &no_ca, &options)
        .query(&query, None)
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(matches!(e.kind, ErrorKind::Unreachable(_)), "{message}");
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains("ca_file"), "{message}");
    // insecure_skip_verify: no CA needed.
    std::fs::write(pki.path("password"), PASSWORD).unwrap();
    let insecure = format!("{no_ca}      insecure_skip_verify: true\n");
    answers(&client_with(&tls_url, &insecure, &options)).await;

    // A CA file that is not one: a configuration error before any request.
    let bad_ca = basic_auth.replace(
        &ca,
        &format!("      ca_file: {}\n", pki.path("server.key").display()),
    );
    let Err(e) = try_client(&tls_url, &bad_ca, &options) else {
        panic!("a key as CA was accepted")
    };
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
}
