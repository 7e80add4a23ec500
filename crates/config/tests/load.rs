//! Behaviour of `load_str` that the corpus does not show line by line: the values Kiali
//! would end up with.

use meshtrace_config::{AuthType, InputShape, Loaded, Location, Provider, load_str};

fn tracing_yaml(body: &str) -> String {
    let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
    format!("external_services:\n  tracing:\n{indented}")
}

/// The configuration with `body` as its tracing section (which the test means to be valid).
fn load_tracing(body: &str) -> Loaded {
    load_str(&tracing_yaml(body)).unwrap()
}

#[test]
fn defaults_are_kialis() {
    let loaded = load_str("external_services:\n  tracing:\n    enabled: true\n").unwrap();
    let t = &loaded.config.tracing;
    assert_eq!(t.provider, Provider::Jaeger);
    assert!(t.use_grpc);
    assert_eq!(t.grpc_port, 9095);
    assert!(t.namespace_selector);
    assert_eq!(t.query_timeout().as_secs(), 5);
    assert_eq!(
        t.whitelist_istio_system,
        ["jaeger-query", "istio-ingressgateway"]
    );
    assert!(t.tempo_config.cache_enabled);
    assert_eq!(t.tempo_config.cache_capacity, 200);
    assert_eq!(t.auth.kind, AuthType::None);
    // A plain config.yaml keeps internal_url empty: external links only.
    assert_eq!(t.internal_url, "");
    assert!(!t.has_native_charts());
    assert_eq!(loaded.config.ui_tracing_limit, 100);
    assert_eq!(loaded.config.server.port, 20001);
    assert_eq!(loaded.config.server.web_root, "/");
}

#[test]
fn deprecated_keys_map_onto_new_ones_and_win_like_in_kiali() {
    let loaded = load_tracing(
        "enabled: true\ninternal_url: http://new:16685\nin_cluster_url: http://old:16685\nurl: http://browser",
    );
    assert_eq!(loaded.config.tracing.internal_url, "http://old:16685");
    assert_eq!(loaded.config.tracing.external_url, "http://browser");
    let messages: Vec<&str> = loaded.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(messages[0].contains("`in_cluster_url` and `external_services.tracing.internal_url`"));
    assert!(messages[1].contains("rename it to `external_url`"));
}

#[test]
fn an_empty_deprecated_key_changes_nothing() {
    let loaded = load_tracing("internal_url: http://new:16685\nin_cluster_url: \"\"");
    assert_eq!(loaded.config.tracing.internal_url, "http://new:16685");
    assert!(loaded.warnings.is_empty());
}

#[test]
fn operator_defaults_follow_use_grpc_and_the_deployment_namespace() {
    // A Kiali CR in the namespace `cr-ns` with `spec`, loaded.
    let cr = |spec: &str| {
        load_str(&format!(
            "kind: Kiali\nmetadata:\n  name: k\n  namespace: cr-ns\nspec:\n{spec}"
        ))
        .unwrap()
    };
    let grpc = cr("  external_services:\n    tracing:\n      enabled: true\n");
    assert_eq!(
        grpc.config.tracing.internal_url,
        "http://tracing.cr-ns:16685/jaeger"
    );
    assert_eq!(grpc.config.server.web_root, "/kiali");
    assert_eq!(grpc.config.shape, InputShape::KialiCr { name: "k".into() });

    let http = cr(
        "  deployment:\n    namespace: kiali\n  external_services:\n    tracing:\n      use_grpc: false\n",
    );
    assert_eq!(
        http.config.tracing.internal_url,
        "http://tracing.kiali/jaeger"
    );

    let no_namespace = load_str("kind: Kiali\nspec: {}\n").unwrap();
    assert_eq!(
        no_namespace.config.tracing.internal_url,
        "http://tracing.istio-system:16685/jaeger"
    );

    let explicit = cr("  external_services:\n    tracing:\n      internal_url: http://j:16685\n");
    assert_eq!(explicit.config.tracing.internal_url, "http://j:16685");
}

#[test]
fn a_configmap_reports_positions_in_the_file() {
    let text = "kind: ConfigMap\ndata:\n  config.yaml: |\n    external_services:\n      tracing:\n        provder: tempo\n";
    let problems = load_str(text).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "external_services.tracing.provder");
    match &problems[0].location {
        Location::File(pos) => assert_eq!((pos.line, pos.col), (6, 9)),
        other => panic!("unexpected location {other:?}"),
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = load_str(&tracing_yaml(
        "enabled: true\nprovider: zipkin\ngrpc_port: 0\nquery_timeout: 0\nauth:\n  type: digest\nbogus: 1",
    ))
    .unwrap_err();
    let paths: Vec<&str> = problems
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "external_services.tracing.provider",
            "external_services.tracing.grpc_port",
            "external_services.tracing.query_timeout",
            "external_services.tracing.auth.type",
            "external_services.tracing.bogus",
        ]
    );
}

#[test]
fn unrelated_kiali_keys_are_accepted_silently() {
    // `auth` and `login_token` are read now (tests/login.rs); an anonymous console takes any
    // signing key.
    let loaded = load_str(
        "auth:\n  strategy: anonymous\ndeployment:\n  accessible_namespaces: ['**']\nexternal_services:\n  grafana:\n    enabled: true\n  tracing:\n    enabled: false\nlogin_token:\n  signing_key: abc\n",
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_near_miss_of_a_section_gets_a_warning() {
    let loaded = load_str("external_services:\n  tracng:\n    enabled: true\n").unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(
        loaded.warnings[0]
            .message
            .contains("did you mean `tracing`?")
    );
    assert!(!loaded.config.tracing.enabled);
}

#[test]
fn custom_header_names_keep_their_case() {
    let loaded = load_tracing("custom_headers:\n  X-Scope-OrgID: tenant-a");
    let headers = &loaded.config.tracing.custom_headers;
    assert_eq!(
        headers.get("X-Scope-OrgID").map(String::as_str),
        Some("tenant-a")
    );
}

#[test]
fn credentials_are_read_from_files_when_used() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "first\n").unwrap();
    let loaded = load_tracing(&format!(
        "auth:\n  type: basic\n  username: admin\n  password: {}",
        password.display()
    ));
    let auth = &loaded.config.tracing.auth;
    assert_eq!(auth.username.resolve().unwrap(), "admin");
    assert_eq!(auth.password.resolve().unwrap(), "first");
    std::fs::write(&password, "rotated").unwrap();
    assert_eq!(auth.password.resolve().unwrap(), "rotated");
}

#[test]
fn no_secret_reaches_debug_output_or_the_effective_view() {
    let loaded = load_tracing(
        "enabled: true\ninternal_url: http://user:pw-SECRET@jaeger:16686\nuse_grpc: false\ncustom_headers:\n  Authorization: Bearer tok-SECRET\nauth:\n  type: bearer\n  token: tok-SECRET",
    );
    let debug = format!("{:?}", loaded.config.tracing.auth);
    assert!(!debug.contains("SECRET"), "{debug}");
    let view = meshtrace_config::effective(&loaded.config).to_string();
    assert!(!view.contains("SECRET"), "{view}");
    let mode = meshtrace_config::mode(&loaded.config.tracing);
    assert_eq!(
        mode,
        "native charts via Jaeger HTTP at http://user:xxx@jaeger:16686/"
    );
}
