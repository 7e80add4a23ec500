//! `external_services.prometheus` read as Kiali reads it: the values a Kiali user's CR or
//! config.yaml ends up with, Kiali's and the operator's defaults, and every problem reported
//! at its place, as precisely as for tracing, without echoing a secret.

use std::time::Duration;

use meshtrace_config::{AuthType, Diagnostic, Loaded, OAuth2AuthStyle, load_str};

fn prometheus_yaml(body: &str) -> String {
    let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
    format!("external_services:\n  prometheus:\n{indented}")
}

/// Every problem as `config check` prints it.
fn problems(result: Result<Loaded, Vec<Diagnostic>>) -> Vec<String> {
    let diagnostics = match result {
        Ok(loaded) => loaded.warnings,
        Err(diagnostics) => diagnostics,
    };
    diagnostics.iter().map(|d| d.render("k.yaml")).collect()
}

fn assert_no_secret(texts: &[String]) {
    for text in texts {
        assert!(!text.contains("SECRET"), "a secret leaked: {text}");
    }
}

#[test]
fn a_kiali_cr_for_thanos_with_a_mounted_token_reads_unchanged() {
    let secrets = tempfile::tempdir().unwrap();
    let token = secrets.path().join("token");
    std::fs::write(&token, "first-SECRET\n").unwrap();
    // As in the Kiali docs for OpenShift's user-workload monitoring: Thanos querier, a bearer
    // token, a tenant header, a scope per mesh.
    let cr = format!(
        r#"apiVersion: kiali.io/v1alpha1
kind: Kiali
metadata:
  name: kiali
  namespace: istio-system
spec:
  external_services:
    prometheus:
      auth:
        type: bearer
        token: {token}
        insecure_skip_verify: true
      custom_headers:
        X-Scope-OrgID: tenant-a
      query_scope:
        mesh_id: mesh-east
      thanos_proxy:
        enabled: true
        retention_period: 15d
        scrape_interval: 1m
      url: https://thanos-querier.openshift-monitoring.svc.cluster.local:9091
      health_check_url: https://thanos-querier.openshift-monitoring.svc.cluster.local:9091/-/ready
      cache_enabled: false
      cache_duration: 10
      cache_expiration: 600
      is_core: false
"#,
        token = token.display()
    );
    let loaded = load_str(&cr).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = &loaded.config;
    assert!(config.has_prometheus_section());
    let p = &config.prometheus;
    assert!(p.enabled);
    assert_eq!(
        p.url,
        "https://thanos-querier.openshift-monitoring.svc.cluster.local:9091"
    );
    assert_eq!(
        p.health_url(),
        "https://thanos-querier.openshift-monitoring.svc.cluster.local:9091/-/ready"
    );
    assert_eq!(p.auth.kind, AuthType::Bearer);
    assert!(p.auth.insecure_skip_verify);
    assert_eq!(p.auth.token.resolve().unwrap(), "first-SECRET");
    // A rotated Secret is read on the next use.
    std::fs::write(&token, "second-SECRET").unwrap();
    assert_eq!(p.auth.token.resolve().unwrap(), "second-SECRET");
    assert_eq!(p.custom_headers["X-Scope-OrgID"], "tenant-a");
    assert_eq!(
        p.query_scope_labels(),
        [("mesh_id".to_string(), "mesh-east".to_string())]
    );
    assert!(p.thanos_proxy.enabled);
    assert_eq!(
        p.thanos_proxy.retention(),
        Some(Duration::from_secs(15 * 86_400))
    );
    assert_eq!(p.thanos_proxy.scrape_every(), Some(Duration::from_secs(60)));
    assert!(!p.cache_enabled);
    assert_eq!(p.cache_duration(), Duration::from_secs(10));
    assert_eq!(p.cache_expiration(), Duration::from_secs(600));
    // Written false: the operator's `true` does not apply.
    assert!(!p.is_core);
    // The tracing section is untouched by all this.
    assert!(!config.tracing.enabled);
}

#[test]
fn defaults_are_kialis_and_no_section_is_not_a_configured_prometheus() {
    let loaded = load_str("external_services:\n  tracing:\n    enabled: true\n").unwrap();
    assert!(!loaded.config.has_prometheus_section());
    let p = &loaded.config.prometheus;
    assert!(p.enabled);
    assert_eq!(p.url, "http://prometheus.istio-system:9090");
    assert_eq!(
        p.health_url(),
        "http://prometheus.istio-system:9090/-/healthy"
    );
    assert_eq!(p.auth.kind, AuthType::None);
    assert_eq!(p.auth.oauth2.auth_style, OAuth2AuthStyle::Header);
    assert!(p.custom_headers.is_empty() && p.query_scope.is_empty());
    assert!(!p.thanos_proxy.enabled);
    assert_eq!(p.thanos_proxy.retention_period, "7d");
    assert_eq!(p.thanos_proxy.scrape_interval, "30s");
    assert!(p.cache_enabled);
    assert_eq!(p.cache_duration(), Duration::from_secs(7));
    assert_eq!(p.cache_expiration(), Duration::from_secs(300));
    assert!(p.health_check_url.is_empty());
    assert!(!p.is_core);

    // An empty or null section is no section either; one key is.
    for (text, given) in [
        ("external_services:\n  prometheus:\n", false),
        ("external_services:\n  prometheus: {}\n", false),
        (
            "external_services:\n  prometheus:\n    enabled: false\n",
            true,
        ),
    ] {
        let config = load_str(text).unwrap().config;
        assert_eq!(config.has_prometheus_section(), given, "{text}");
    }
}

#[test]
fn a_cr_gets_the_operators_url_and_is_core() {
    let cr = |spec: &str| {
        format!(
            "apiVersion: kiali.io/v1alpha1\nkind: Kiali\nmetadata:\n  name: kiali\n  namespace: mesh-ops\nspec:\n{spec}"
        )
    };
    let bare = load_str(&cr("  istio_namespace: istio-system\n"))
        .unwrap()
        .config;
    assert!(!bare.has_prometheus_section());
    // The operator derives the URL from Kiali's namespace (the CR's), not Istio's.
    assert_eq!(bare.prometheus.url, "http://prometheus.mesh-ops:9090");
    assert!(bare.prometheus.is_core);

    let explicit = cr(
        "  deployment:\n    namespace: kiali\n  external_services:\n    prometheus:\n      url: \"\"\n",
    );
    let config = load_str(&explicit).unwrap().config;
    assert_eq!(config.prometheus.url, "http://prometheus.kiali:9090");

    let disabled = cr("  external_services:\n    prometheus:\n      enabled: false\n");
    let config = load_str(&disabled).unwrap().config;
    assert_eq!(config.prometheus.url, "http://prometheus.istio-system:9090");
}

#[test]
fn unknown_keys_are_errors_that_name_the_nearest_key() {
    let text = prometheus_yaml(
        "cache_duraton: 5\nhealthCheckUrl: http://p:9090/-/ready\nthanos_proxy:\n  scrape_intreval: 1m\nauth:\n  tokn: abc-SECRET\n  oauth2:\n    clientId: kiali\nquery_timeout: 5",
    );
    let found = problems(load_str(&text));
    assert_eq!(
        found,
        [
            "k.yaml:3:5: error: external_services.prometheus.cache_duraton: unknown key `cache_duraton`; did you mean `cache_duration`?",
            "k.yaml:4:5: error: external_services.prometheus.healthCheckUrl: unknown key `healthCheckUrl`; did you mean `health_check_url`?",
            "k.yaml:6:7: error: external_services.prometheus.thanos_proxy.scrape_intreval: unknown key `scrape_intreval`; did you mean `scrape_interval`?",
            "k.yaml:8:7: error: external_services.prometheus.auth.tokn: unknown key `tokn`; did you mean `token`?",
            "k.yaml:10:9: error: external_services.prometheus.auth.oauth2.clientId: unknown key `clientId`; did you mean `client_id`?",
            "k.yaml:11:5: error: external_services.prometheus.query_timeout: unknown key `query_timeout`; valid keys here: auth, cache_duration, cache_enabled, cache_expiration, custom_headers, enabled, health_check_url, is_core, query_scope, thanos_proxy, url",
        ]
    );
    assert_no_secret(&found);

    // A typo of the section itself, while it is missing, is a warning.
    let typo = problems(load_str(
        "external_services:\n  prometeus:\n    url: http://p:9090\n",
    ));
    assert_eq!(
        typo,
        [
            "k.yaml:2:3: warning: external_services.prometeus: `prometeus` is not a key meshtrace reads, and `prometheus` is missing: did you mean `prometheus`?"
        ]
    );
}

#[test]
fn wrong_types_are_reported_with_their_path_and_never_their_value() {
    let text = prometheus_yaml(
        "enabled: \"true\"\ncache_duration: \"7\"\ncache_expiration: 0\ncache_enabled: 1\ncustom_headers: [X-Org]\nquery_scope: mesh_id=1\nthanos_proxy: true\nis_core: yes please\nauth:\n  password:\n    value: hunter2-SECRET\n  type: [bearer]",
    );
    let found = problems(load_str(&text));
    assert_eq!(
        found,
        [
            "k.yaml:3:14: error: external_services.prometheus.enabled: expected true or false, found the string \"true\"; write it without quotes",
            "k.yaml:4:21: error: external_services.prometheus.cache_duration: expected a whole number, found the string \"7\"; write it without quotes",
            "k.yaml:5:23: error: external_services.prometheus.cache_expiration: must be a positive number of seconds, found 0",
            "k.yaml:6:20: error: external_services.prometheus.cache_enabled: expected true or false, found a number \"1\"",
            "k.yaml:7:21: error: external_services.prometheus.custom_headers: expected a mapping of keys, found a list",
            "k.yaml:8:18: error: external_services.prometheus.query_scope: expected a mapping of keys, found a string",
            "k.yaml:9:19: error: external_services.prometheus.thanos_proxy: expected a mapping of keys, found a boolean",
            "k.yaml:10:14: error: external_services.prometheus.is_core: expected true or false, found a string \"yes please\"",
            "k.yaml:13:9: error: external_services.prometheus.auth.password: expected a string, found a mapping",
            "k.yaml:14:13: error: external_services.prometheus.auth.type: expected a string, found a list",
        ]
    );
    assert_no_secret(&found);

    let negative = problems(load_str(&prometheus_yaml("cache_duration: -1")));
    assert_eq!(
        negative,
        [
            "k.yaml:3:21: error: external_services.prometheus.cache_duration: must be at least 0, found -1"
        ]
    );
    // 0 is allowed: the cache never serves an answer, as in Kiali.
    let config = load_str(&prometheus_yaml("cache_duration: 0"))
        .unwrap()
        .config;
    assert_eq!(config.prometheus.cache_duration(), Duration::ZERO);
}

#[test]
fn bad_urls_are_errors_without_their_password() {
    let cases = [
        (
            "url: prometheus.istio-system:9090",
            "k.yaml:3:10: error: external_services.prometheus.url: found \"prometheus.istio-system:9090\": not an absolute URL; write it with its scheme (e.g. http://prometheus.istio-system:9090)",
        ),
        (
            "url: ftp://prometheus:9090",
            "k.yaml:3:10: error: external_services.prometheus.url: uses the scheme `ftp`; expected http or https",
        ),
        (
            "url: http://kiali:pw-SECRET@prometheus:99999",
            "k.yaml:3:10: error: external_services.prometheus.url: found \"http://kiali:xxx@prometheus:99999\": the port must be a number from 1 to 65535",
        ),
        (
            "url: \"\"",
            "k.yaml:3:10: error: external_services.prometheus.url: must be set when prometheus is enabled (Kiali refuses an empty url): e.g. http://prometheus.istio-system:9090, or set `enabled: false`",
        ),
        (
            "health_check_url: /-/healthy",
            "k.yaml:3:23: error: external_services.prometheus.health_check_url: found \"/-/healthy\": not an absolute URL; write it with its scheme (e.g. http://prometheus.istio-system:9090)",
        ),
    ];
    for (body, expected) in cases {
        let found = problems(load_str(&prometheus_yaml(body)));
        assert_eq!(found, [expected], "{body}");
    }
    // Disabled, an empty URL is fine (Kiali's rule applies to an enabled Prometheus only).
    let loaded = load_str(&prometheus_yaml("enabled: false\nurl: \"\"")).unwrap();
    assert!(loaded.warnings.is_empty());
    // The same masking for tracing's URLs.
    let tracing =
        "external_services:\n  tracing:\n    internal_url: http://u:pw-SECRET@jaeger:70000\n";
    assert_no_secret(&problems(load_str(tracing)));
}

#[test]
fn auth_follows_the_same_rules_as_tracing() {
    let text = prometheus_yaml("auth:\n  type: bearr\n  cert_file: /no/such/cert.pem");
    assert_eq!(
        problems(load_str(&text)),
        [
            "k.yaml:4:13: error: external_services.prometheus.auth.type: found \"bearr\"; expected one of: none, basic, bearer, oauth2 (did you mean `bearer`?)",
            "k.yaml:5:18: error: external_services.prometheus.auth.cert_file: a client certificate needs both `cert_file` and `key_file`; `key_file` is missing",
            "k.yaml:5:18: warning: external_services.prometheus.auth.cert_file: the file `/no/such/cert.pem` does not exist here; it is read each time the credential is used",
        ]
    );

    let oauth2 = prometheus_yaml(
        "auth:\n  type: oauth2\n  use_kiali_token: true\n  oauth2:\n    token_url: http://login.example.com/token\n    client_secret: s-SECRET\n    scopes: [\"https://prometheus.monitor.azure.com/.default\"]\n    auth_style: params",
    );
    let found = problems(load_str(&oauth2));
    assert_eq!(
        found,
        [
            "k.yaml:4:13: error: external_services.prometheus.auth.oauth2.client_id: required when `auth.type` is oauth2",
            "k.yaml:5:24: error: external_services.prometheus.auth.use_kiali_token: `use_kiali_token` and `auth.type: oauth2` cannot be used together",
            "k.yaml:5:24: warning: external_services.prometheus.auth.use_kiali_token: the service-account token is read from `/var/run/secrets/kubernetes.io/serviceaccount/token`, which does not exist here",
            "k.yaml:7:20: error: external_services.prometheus.auth.oauth2.token_url: found \"http://login.example.com/token\": the token URL must use https (or set `auth.insecure_skip_verify: true` for dev/test)",
        ]
    );
    assert_no_secret(&found);

    // OAuth2 is fine for Prometheus over HTTP (no gRPC rule), and basic auth reads its
    // credentials.
    let ok = prometheus_yaml(
        "auth:\n  type: oauth2\n  oauth2:\n    token_url: https://login.example.com/token\n    client_id: kiali\n    client_secret: s-SECRET\n    auth_style: params",
    );
    let auth = load_str(&ok).unwrap().config.prometheus.auth;
    assert_eq!(auth.oauth2.auth_style, OAuth2AuthStyle::Params);
    assert_eq!(auth.oauth2.client_secret.resolve().unwrap(), "s-SECRET");
}

#[test]
fn query_scope_names_become_label_names_as_in_kiali() {
    let text = prometheus_yaml(
        "query_scope:\n  mesh_id: mesh1\n  istio.cluster_id: east\n  1tenant: a\n  \"\": b",
    );
    let found = problems(load_str(&text));
    assert_eq!(
        found,
        [
            "k.yaml:5:25: warning: external_services.prometheus.query_scope.\"istio.cluster_id\": queries use it as the label `istio_cluster_id`: Kiali turns every character outside [a-zA-Z0-9_] into `_`",
            "k.yaml:6:16: error: external_services.prometheus.query_scope.1tenant: \"1tenant\" is not a Prometheus label name (a letter or `_`, then letters, digits or `_`): every query would fail",
            "k.yaml:7:11: error: external_services.prometheus.query_scope: \"\" is not a Prometheus label name (a letter or `_`, then letters, digits or `_`): every query would fail",
        ]
    );
    let loaded = load_str(&prometheus_yaml(
        "query_scope:\n  mesh_id: mesh1\n  istio.cluster_id: east",
    ))
    .unwrap();
    assert_eq!(
        loaded.config.prometheus.query_scope_labels(),
        [
            ("istio_cluster_id".to_string(), "east".to_string()),
            ("mesh_id".to_string(), "mesh1".to_string()),
        ]
    );
}

#[test]
fn thanos_durations_are_checked_when_thanos_is_enabled() {
    let text = prometheus_yaml(
        "thanos_proxy:\n  enabled: true\n  retention_period: 7days\n  scrape_interval: 30",
    );
    let loaded = load_str(&text).unwrap();
    let found = problems(Ok(loaded.clone()));
    assert_eq!(
        found,
        [
            "k.yaml:5:25: warning: external_services.prometheus.thanos_proxy.retention_period: found \"7days\": not a Prometheus duration (e.g. 30s, 1h30m, 7d); Kiali then uses 15d",
            "k.yaml:6:24: warning: external_services.prometheus.thanos_proxy.scrape_interval: found \"30\": not a Prometheus duration (e.g. 30s, 1h30m, 7d); Kiali then uses 15s",
        ]
    );
    assert_eq!(loaded.config.prometheus.thanos_proxy.retention(), None);
    // Disabled, Kiali never reads them.
    let quiet = prometheus_yaml("thanos_proxy:\n  retention_period: 7days");
    assert!(load_str(&quiet).unwrap().warnings.is_empty());
}

#[test]
fn hostile_values_get_one_clear_error_each() {
    // A long unknown key (YAML allows 1,024 characters) costs no edit distance.
    let long_key = "k".repeat(1_000);
    let found = problems(load_str(&prometheus_yaml(&format!("{long_key}: 1"))));
    assert_eq!(found.len(), 1);
    assert!(found[0].ends_with("valid keys here: auth, cache_duration, cache_enabled, cache_expiration, custom_headers, enabled, health_check_url, is_core, query_scope, thanos_proxy, url"));

    // A header value with a line break would split the request; a number too large for any
    // type; a deep mapping where a string belongs.
    let text = prometheus_yaml(
        "custom_headers:\n  X-Token: \"a-SECRET\\r\\nHost: evil\"\n  \"Bad Name\": x\ncache_expiration: 99999999999999999999\nurl:\n  a:\n    b:\n      c: SECRET",
    );
    let found = problems(load_str(&text));
    assert_eq!(
        found,
        [
            "k.yaml:4:16: error: external_services.prometheus.custom_headers.X-Token: the header value holds a line break or another control character",
            "k.yaml:5:19: error: external_services.prometheus.custom_headers.Bad Name: \"Bad Name\" is not a valid HTTP header name",
            "k.yaml:6:23: error: external_services.prometheus.cache_expiration: expected a whole number, found a number \"99999999999999999999\"",
            "k.yaml:8:7: error: external_services.prometheus.url: expected a string, found a mapping",
        ]
    );
    assert_no_secret(&found);
}

#[test]
fn the_effective_view_shows_secrets_as_xxx() {
    let mut text = prometheus_yaml(
        "url: https://kiali:url-SECRET@prometheus:9090\nauth:\n  type: basic\n  username: user-SECRET\n  password: pw-SECRET\ncustom_headers:\n  Authorization: Bearer h-SECRET",
    );
    // Tracing's URL passwords and header values stay out of `Debug` too.
    text.push_str("  tracing:\n    internal_url: http://u:t-SECRET@jaeger:16686\n    use_grpc: false\n    custom_headers:\n      X-Api-Key: k-SECRET\n");
    let loaded = load_str(&text).unwrap();
    let debug = format!("{:?}", loaded.config);
    assert!(!debug.contains("SECRET"), "{debug}");
    assert!(debug.contains(r#""username":"xxx""#), "{debug}");
    let view = meshtrace_config::effective(&loaded.config);
    let p = &view["external_services"]["prometheus"];
    assert_eq!(p["url"], "https://kiali:xxx@prometheus:9090/");
    assert_eq!(p["auth"]["type"], "basic");
    assert_eq!(p["auth"]["username"], "xxx");
    assert_eq!(p["auth"]["password"], "xxx");
    assert_eq!(p["auth"]["token"], "");
    assert_eq!(p["custom_headers"]["Authorization"], "xxx");
    assert_eq!(p["cache_duration"], 7);
    assert_eq!(p["thanos_proxy"]["scrape_interval"], "30s");
    assert!(!view.to_string().contains("SECRET"));
}
