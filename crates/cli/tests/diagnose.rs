//! `meshtrace diagnose` finds a store on unusual ports, explains the gRPC-at-HTTP-port mistake,
//! and prints the configurations that work, best first. Every test sets the usual ports
//! (`--usual-ports`), so that whatever else listens on Jaeger's ports of this machine (a
//! `meshtrace demo` left running) plays no part.

mod common;

use std::process::Command;

use common::start_store;

fn diagnose(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .arg("diagnose")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn diagnose_finds_a_store_on_unusual_ports() {
    let store = start_store(&["--memory".as_ref()]);
    let grpc_port = store.query_grpc.rsplit(':').next().unwrap();
    let (code, out) = diagnose(&[
        &format!("http://{}", store.query_http),
        "--port",
        grpc_port,
        "--usual-ports",
        "none",
    ]);
    assert_eq!(code, 0, "{out}");
    // The mistake is named, with the fix.
    assert!(
        out.contains(&format!(
            "no    Jaeger gRPC http://{0}: Jaeger gRPC at http://{0}: this address answers plain HTTP (HTTP 404, text/plain), not gRPC.",
            store.query_http
        )),
        "{out}"
    );
    // Jaeger gRPC first (Kiali's default), then Jaeger HTTP.
    let blocks: Vec<&str> = out.split("\n# ").skip(1).collect();
    assert_eq!(blocks.len(), 2, "{out}");
    assert!(
        blocks[0].contains(&format!(
            "internal_url: http://{}\n    use_grpc: true",
            store.query_grpc
        )),
        "{out}"
    );
    assert!(
        blocks[1].contains(&format!(
            "internal_url: http://{}\n    use_grpc: false",
            store.query_http
        )),
        "{out}"
    );
    assert!(out.contains("provider: jaeger"));
}

#[test]
fn diagnose_fails_when_nothing_answers() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let also_dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // Only the two dead ports: the URL's, and the one usual port given.
    let (code, out) = diagnose(&[
        &format!("http://127.0.0.1:{}", dead.port()),
        "--usual-ports",
        &also_dead.port().to_string(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out,
        format!(
            "probes:\n  no    tcp 127.0.0.1:{}: closed or filtered\n  no    tcp 127.0.0.1:{}: closed or filtered\n\nno configuration worked\n",
            dead.port(),
            also_dead.port()
        )
    );
}

#[test]
fn diagnose_tries_the_usual_ports_it_is_given() {
    let store = start_store(&["--memory".as_ref()]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let port = |addr: &str| addr.rsplit(':').next().unwrap().to_string();
    let usual = format!("{},{}", port(&store.query_http), port(&store.query_grpc));
    let (code, out) = diagnose(&[
        &format!("http://127.0.0.1:{}", dead.port()),
        "--usual-ports",
        &usual,
    ]);
    assert_eq!(code, 0, "{out}");
    let tcp: Vec<&str> = out.lines().filter(|l| l.contains(" tcp ")).collect();
    assert_eq!(tcp.len(), 3, "{out}");
    assert!(
        out.contains(&format!(
            "internal_url: http://{}\n    use_grpc: true",
            store.query_grpc
        )),
        "{out}"
    );
}

#[test]
fn diagnose_refuses_a_usual_port_that_is_no_port() {
    for bad in ["0", "16686,x", "70000"] {
        let output = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
            .args(["diagnose", "http://127.0.0.1:1", "--usual-ports", bad])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains("is not a port (1-65535)"),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn diagnose_probes_a_prometheus_with_the_auth_of_the_config() {
    let samples = "# TYPE up gauge\nup{job=\"x\"} 1 1700000000\n# EOF\n";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let prometheus = runtime.block_on(meshtrace_testkit::prometheus::RealPrometheus::start(
        samples,
    ));
    let (_dir, config) = common::temp_file(
        "kiali.yaml",
        "external_services:\n  prometheus:\n    auth:\n      type: bearer\n      token: tok-SECRET\n",
    );
    let (code, out) = diagnose(&[
        "--prometheus",
        &prometheus.addr.to_string(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let addr = prometheus.addr;
    assert!(out.starts_with("prometheus probes:\n"), "{out}");
    assert!(
        out.contains(&format!(
            "  ok    Prometheus API http://{addr}: answers, version 2."
        )),
        "{out}"
    );
    assert!(
        out.contains("  no    Istio metrics (istio_requests_total): none"),
        "{out}"
    );
    // The block to paste: the URL that worked and the auth of the configuration, the token as xxx.
    assert!(
        out.contains(&format!(
            "external_services:\n  prometheus:\n    enabled: true\n    url: http://{addr}\n    auth:\n      type: bearer\n      token: xxx\n"
        )),
        "{out}"
    );
    assert!(!out.contains("SECRET"), "{out}");

    // Nothing listens: said, exit status 1; and without a target, a usage error.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, out) = diagnose(&["--prometheus", &dead.to_string()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.ends_with("\nno Prometheus answered\n"), "{out}");
    let (code, _) = diagnose(&[]);
    assert_eq!(code, 2);
}
