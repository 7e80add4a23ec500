//! `meshtrace diagnose` finds a store on unusual ports, explains the gRPC-at-HTTP-port mistake,
//! and prints the configurations that work, best first.

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
    let (code, out) = diagnose(&[&format!("http://{}", store.query_http), "--port", grpc_port]);
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
    // Only the dead port and the usual ports of 127.0.0.2, where nothing of ours listens.
    let (code, out) = diagnose(&[&format!("http://127.0.0.2:{}", dead.port())]);
    assert_eq!(code, 1, "{out}");
    assert!(out.ends_with("no configuration worked\n"), "{out}");
}
