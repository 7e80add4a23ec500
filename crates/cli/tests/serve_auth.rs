//! `meshtrace serve` with Kiali's `auth`: a strategy that cannot work here is refused before
//! anything is served, with what to change; `--auth-trusted-proxy` takes addresses and CIDRs.

mod common;

use std::process::Command;

fn serve(yaml: &str, args: &[&str]) -> (bool, String) {
    let (_dir, config) = common::temp_file("kiali.yaml", yaml);
    let output = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn serve_refuses_auth_it_cannot_serve() {
    let header = "auth:\n  strategy: header\nlogin_token:\n  signing_key: 0123456789abcdef\n";
    let (ok, stderr) = serve(header, &[]);
    assert!(!ok);
    assert!(
        stderr.contains("auth.strategy `header` cannot work: the `header` strategy trusts the Authorization header only from the authenticating proxy, and no proxy address is configured (--auth-trusted-proxy)"),
        "{stderr}"
    );
    let (ok, stderr) = serve(header, &["--auth-trusted-proxy", "10.0.0.0/33"]);
    assert!(!ok);
    assert!(
        stderr.contains("`10.0.0.0/33` is not an IP address or a CIDR network"),
        "{stderr}"
    );
    let (ok, stderr) = serve("auth:\n  strategy: token\n", &[]);
    assert!(!ok);
    assert!(stderr.contains("run `meshtrace config check"), "{stderr}");
}
