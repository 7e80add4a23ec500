//! Kiali's `auth` and `login_token` read as Kiali reads them: the strategies, `openid`'s keys
//! and defaults, the signing-key rule, and the strategies meshtrace cannot serve refused with
//! a message that names the ones it can, never quoting a key.

use meshtrace_config::{ApiToken, AuthStrategy, Diagnostic, Loaded, effective, load_str};

fn problems(result: Result<Loaded, Vec<Diagnostic>>) -> Vec<String> {
    let diagnostics = match result {
        Ok(loaded) => loaded.warnings,
        Err(diagnostics) => diagnostics,
    };
    diagnostics.iter().map(|d| d.render("k.yaml")).collect()
}

#[test]
fn without_an_auth_section_the_console_stays_anonymous_and_kialis_defaults_apply() {
    let loaded = load_str("server:\n  port: 20001\n").unwrap();
    let auth = &loaded.config.auth;
    assert_eq!(auth.strategy, AuthStrategy::Anonymous);
    assert_eq!(auth.openid.username_claim, "sub");
    assert_eq!(auth.openid.scopes, ["openid", "profile", "email"]);
    assert_eq!(auth.openid.authentication_timeout_secs, 300);
    assert_eq!(auth.openid.api_token, ApiToken::IdToken);
    assert_eq!(loaded.config.login_token.expiration_seconds, 86400);
    assert_eq!(loaded.config.session_cluster(), "Kubernetes");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_kiali_cr_with_openid_reads_unchanged_and_shows_the_key_as_xxx() {
    let cr = r#"apiVersion: kiali.io/v1alpha1
kind: Kiali
metadata: {name: kiali, namespace: istio-system}
spec:
  kubernetes_config: {cluster_name: west}
  login_token:
    signing_key: "SECRET-abcdefghijklmnopqrstuvwxy"
  auth:
    strategy: openid
    openid:
      client_id: kiali
      issuer_uri: https://dex.example.com
      scopes: [email, groups]
      username_claim: email
      allowed_domains: [example.com, example.org]
      disable_rbac: true
      authentication_timeout: 120
      additional_request_params: {prompt: login, hd: example.com}
      api_token: access_token
"#;
    let loaded = load_str(cr).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = &loaded.config;
    let openid = &config.auth.openid;
    assert_eq!(config.auth.strategy, AuthStrategy::OpenId);
    assert_eq!(openid.allowed_domains, ["example.com", "example.org"]);
    assert_eq!(openid.authentication_timeout_secs, 120);
    assert_eq!(
        openid.additional_request_params.get("prompt").unwrap(),
        "login"
    );
    assert_eq!(openid.api_token, ApiToken::AccessToken);
    assert_eq!(config.auth.openid_scopes(), ["openid", "email", "groups"]);
    assert_eq!(config.session_cluster(), "west");
    let shown = serde_json::to_string(&effective(config)).unwrap();
    assert!(!shown.contains("SECRET"), "{shown}");
    let shown = effective(config);
    assert_eq!(shown["login_token"]["signing_key"], "xxx");
    assert_eq!(
        shown["auth"]["openid"]["issuer_uri"],
        "https://dex.example.com"
    );
    assert!(!format!("{:?}", config.login_token).contains("SECRET"));
}

#[test]
fn token_and_openshift_are_refused_with_the_strategies_that_work_outside_a_cluster() {
    for strategy in ["token", "openshift"] {
        let text = problems(load_str(&format!("auth:\n  strategy: {strategy}\n"))).join("\n");
        assert!(
            text.contains(&format!(
                "k.yaml:2:13: error: auth.strategy: `{strategy}` needs the Kubernetes API"
            )),
            "{text}"
        );
        assert!(
            text.contains("`anonymous`") && text.contains("`openid`") && text.contains("`header`")
        );
        // One error: the missing signing key is not worth a second one.
        assert_eq!(text.matches("error:").count(), 1, "{text}");
    }
}

#[test]
fn the_signing_key_must_be_16_24_or_32_bytes_and_is_never_quoted() {
    let header =
        |key: &str| format!("auth:\n  strategy: header\nlogin_token:\n  signing_key: \"{key}\"\n");
    for len in [16, 24, 32] {
        let key = "K".repeat(len);
        let loaded = load_str(&header(&key)).unwrap();
        assert_eq!(loaded.config.auth.strategy, AuthStrategy::Header);
    }
    for len in [6, 15, 17, 31, 33, 64] {
        let key = "SECRET".chars().cycle().take(len).collect::<String>();
        let text = problems(load_str(&header(&key))).join("\n");
        assert!(
            text.contains(&format!("login_token.signing_key: must be 16, 24 or 32 bytes long (an AES-128, AES-192 or AES-256 key), found {len} bytes")),
            "{text}"
        );
        assert!(!text.contains(&key), "{text}");
    }
    // Kiali's default key is refused unless the console is anonymous.
    let text = problems(load_str("auth:\n  strategy: header\n")).join("\n");
    assert!(text.contains("k.yaml:2:13: error: login_token.signing_key: the `header` strategy keeps sessions in a cookie"), "{text}");
    assert!(load_str("auth:\n  strategy: anonymous\nlogin_token:\n  signing_key: short\n").is_ok());
}

#[test]
fn a_signing_key_file_is_read_for_its_length_and_a_missing_one_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::write(&good, "0123456789abcdef\n").unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "SECRET-twenty-bytes!").unwrap();
    let yaml = |path: &std::path::Path| {
        format!(
            "auth:\n  strategy: header\nlogin_token:\n  signing_key: {}\n",
            path.display()
        )
    };
    assert!(load_str(&yaml(&good)).unwrap().warnings.is_empty());
    let text = problems(load_str(&yaml(&bad))).join("\n");
    assert!(
        text.contains(
            "error: login_token.signing_key: the file's content must be 16, 24 or 32 bytes long"
        ),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "{text}");
    let missing = load_str(&yaml(&dir.path().join("absent"))).unwrap();
    let text = problems(Ok(missing)).join("\n");
    assert!(
        text.contains("warning: login_token.signing_key: cannot read the credential file"),
        "{text}"
    );
}

#[test]
fn openid_typos_and_missing_keys_are_reported_at_their_place() {
    let yaml = "auth:\n  strategy: openid\n  openid:\n    issuer_uri: https://idp.example\n    client_ids: kiali\n    scope: [openid]\n    disable_rbac: true\nlogin_token:\n  signing_key: 0123456789abcdef\n";
    let text = problems(load_str(yaml)).join("\n");
    assert!(text.contains("k.yaml:5:5: error: auth.openid.client_ids: unknown key `client_ids`; did you mean `client_id`?"), "{text}");
    assert!(
        text.contains(
            "k.yaml:6:5: error: auth.openid.scope: unknown key `scope`; did you mean `scopes`?"
        ),
        "{text}"
    );
    assert!(
        text.contains("k.yaml:2:13: error: auth.openid.client_id: the `openid` strategy needs it"),
        "{text}"
    );
    let typo = problems(load_str("auth:\n  stratgy: openid\n")).join("\n");
    assert!(
        typo.contains(
            "k.yaml:2:3: error: auth.stratgy: unknown key `stratgy`; did you mean `strategy`?"
        ),
        "{typo}"
    );
}

#[test]
fn openid_with_kialis_rbac_default_warns_that_meshtrace_checks_no_rbac() {
    let yaml = "auth:\n  strategy: openid\n  openid:\n    issuer_uri: https://idp.example\n    client_id: kiali\n    api_proxy: https://proxy.example\nlogin_token:\n  signing_key: 0123456789abcdef\n";
    let text = problems(load_str(yaml)).join("\n");
    assert!(
        text.contains("warning: auth.openid.disable_rbac: meshtrace has no Kubernetes API"),
        "{text}"
    );
    assert!(text.contains("k.yaml:6:16: warning: auth.openid.api_proxy: meshtrace does not call the Kubernetes API"), "{text}");
}
