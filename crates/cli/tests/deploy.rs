//! The Kubernetes manifests (deploy/kubernetes): valid against the Kubernetes schemas (the PyPI
//! package `kubernetes-validate`, strict), all listed by the kustomization, on the binary's
//! default ports and Jaeger's Service names, with a restrictive securityContext and resources on
//! every container. That the probes answer is checked on the real binary in image.rs.

#[path = "support/deploy.rs"]
mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{container, container_port, manifest_dir, manifest_files, manifests, object};

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas() {
    let validate = support::tool("kubernetes-validate", "kubernetes-validate");
    for file in manifest_files() {
        assert!(
            !support::yaml_documents(&file).is_empty(),
            "{}: no object",
            file.display()
        );
        // --strict: a misspelt field is an error, not something the API server drops.
        let (ok, out) = support::run(
            &validate,
            &["--strict".as_ref(), "--quiet".as_ref(), file.as_os_str()],
        );
        assert!(ok, "{}:\n{out}", file.display());
    }
}

#[test]
fn the_kustomization_lists_every_manifest() {
    let kustomization = support::root().join("deploy/kubernetes/kustomization.yaml");
    let docs = support::yaml_documents(&kustomization);
    let k = &docs[0];
    assert_eq!(k["kind"], "Kustomization");
    let listed: BTreeSet<String> = k["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let present: BTreeSet<String> = manifest_files()
        .iter()
        .map(|f| {
            let name = f.strip_prefix(manifest_dir()).unwrap().display();
            format!("manifests/{name}")
        })
        .collect();
    assert_eq!(listed, present);
    // The namespace it sets is the one every manifest names (so `apply -f` and `apply -k` agree),
    // and the image it sets is the one the workloads use.
    for o in manifests() {
        assert_eq!(
            o["metadata"]["namespace"], k["namespace"],
            "{}",
            o["metadata"]
        );
    }
    assert_eq!(k["images"][0]["name"], "meshtrace");
    for workload in workloads() {
        let image = container(&workload)["image"].as_str().unwrap().to_string();
        assert!(image.starts_with("meshtrace:"), "{image}");
    }
}

fn workloads() -> Vec<Value> {
    manifests()
        .into_iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "StatefulSet")))
        .collect()
}

#[test]
fn every_container_runs_restricted() {
    let user = image_user();
    let workloads = workloads();
    assert_eq!(workloads.len(), 2, "the console and the store");
    for workload in &workloads {
        let name = &workload["metadata"]["name"];
        let pod = &workload["spec"]["template"]["spec"];
        let c = container(workload);
        let sc = &c["securityContext"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(sc["runAsNonRoot"], true, "{name}");
        // The image's user, so files it owns (the store's volume) are the process's.
        assert_eq!(sc["runAsUser"], user, "{name}");
        assert_eq!(pod["securityContext"]["runAsUser"], user, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["privileged"], false, "{name}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{name}"
        );
        assert!(sc["capabilities"]["add"].is_null(), "{name}");
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{name}"
        );
        assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
        // Requests to schedule by, and a memory limit.
        for key in ["cpu", "memory"] {
            assert!(c["resources"]["requests"][key].is_string(), "{name}: {key}");
        }
        assert!(c["resources"]["limits"]["memory"].is_string(), "{name}");
    }
}

/// The numeric user of the image (`USER 65532:65532`).
fn image_user() -> u64 {
    let stage = support::final_stage();
    let (_, user) = stage.iter().rev().find(|(k, _)| k == "USER").unwrap();
    user.split(':').next().unwrap().parse().unwrap()
}

/// The default ports of `meshtrace store`, from its own help: flag -> port.
fn store_default_ports() -> Vec<(String, u16)> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(["store", "--help"])
        // One line per option, so each default stands on its flag's line.
        .env("COLUMNS", "1000")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    let mut ports = Vec::new();
    for flag in [
        "--otlp-grpc",
        "--otlp-http",
        "--zipkin",
        "--query-http",
        "--query-grpc",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{flag} ")))
            .unwrap_or_else(|| panic!("{flag} in `meshtrace store --help`:\n{help}"));
        let default = line
            .rsplit_once("[default: ")
            .and_then(|(_, d)| d.strip_suffix(']'))
            .unwrap_or_else(|| panic!("no default on {line}"));
        let port = default.rsplit(':').next().unwrap().parse().unwrap();
        ports.push((flag.to_string(), port));
    }
    ports
}

#[test]
fn the_ports_are_the_binarys_defaults_behind_jaegers_service_names() {
    let objects = manifests();

    // The console: Kiali's port, the default of `server.port`, on a Service of the same port.
    let console = container(object(&objects, "Deployment", "meshtrace-console"));
    let kiali_port = meshtrace_config::ServerConfig::default().port;
    assert_eq!(kiali_port, 20001);
    assert_eq!(container_port(console, "http"), kiali_port);
    let service = object(&objects, "Service", "meshtrace-console");
    assert_eq!(service["spec"]["ports"][0]["port"], kiali_port);

    // The store: each container port is the default of its flag.
    let store = container(object(&objects, "StatefulSet", "meshtrace-store"));
    let by_flag = [
        ("--otlp-grpc", "grpc-otel"),
        ("--otlp-http", "http-otel"),
        ("--zipkin", "http-zipkin"),
        ("--query-http", "http-query"),
        ("--query-grpc", "grpc-query"),
    ];
    let defaults = store_default_ports();
    for (flag, name) in by_flag {
        let (_, port) = defaults.iter().find(|(f, _)| f == flag).unwrap();
        assert_eq!(container_port(store, name), *port, "{flag} / {name}");
    }
    // The args set no address, so the defaults are what listens.
    let args = str_args(store);
    for (flag, _) in by_flag {
        assert!(!args.contains(&flag), "{flag} in {args:?}");
    }

    // Jaeger's Service names and ports (Istio's addon), each reaching the store's port of that
    // purpose: (service, port, the store's container port name).
    let expected = [
        ("tracing", 16685, "grpc-query"),
        ("tracing", 80, "http-query"),
        ("jaeger-collector", 4317, "grpc-otel"),
        ("jaeger-collector", 4318, "http-otel"),
        ("jaeger-collector", 9411, "http-zipkin"),
        ("zipkin", 9411, "http-zipkin"),
        ("meshtrace-store", 16686, "http-query"),
    ];
    for (name, port, target) in expected {
        let service = object(&objects, "Service", name);
        assert_eq!(
            service["spec"]["selector"],
            object(&objects, "StatefulSet", "meshtrace-store")["spec"]["selector"]["matchLabels"],
            "{name}"
        );
        let entry = service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == port)
            .unwrap_or_else(|| panic!("{name} has no port {port}"));
        assert_eq!(entry["targetPort"], target, "{name}:{port}");
        // Istio picks the protocol from the port name's prefix.
        let protocol = if target.starts_with("grpc") {
            "grpc"
        } else {
            "http"
        };
        assert!(
            entry["name"].as_str().unwrap().starts_with(protocol),
            "{name}:{port} {}",
            entry["name"]
        );
    }

    // The image exposes exactly the ports the workloads listen on.
    let mut listening: BTreeSet<u16> = BTreeSet::from([kiali_port]);
    listening.extend(defaults.iter().map(|(_, p)| *p));
    let exposed: BTreeSet<u16> = support::final_stage()
        .iter()
        .filter(|(k, _)| k == "EXPOSE")
        .flat_map(|(_, rest)| {
            rest.split_whitespace()
                .map(|p| p.trim_end_matches("/tcp").parse::<u16>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(exposed, listening);
}

#[test]
fn the_console_mounts_kialis_configmap_where_the_image_reads_it() {
    let objects = manifests();
    let deployment = object(&objects, "Deployment", "meshtrace-console");
    let c = container(deployment);
    // No command or args: the image's ENTRYPOINT and CMD run.
    assert!(c["command"].is_null() && c["args"].is_null(), "{c}");
    let cmd = support::exec_form("CMD");
    let config = cmd
        .iter()
        .skip_while(|a| *a != "--config")
        .nth(1)
        .expect("CMD names --config");
    let mount = &c["volumeMounts"][0];
    assert_eq!(mount["readOnly"], true);
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    // Kiali's ConfigMap (`kiali`, key config.yaml), mounted whole: the file is <mount>/config.yaml.
    assert_eq!(volume["configMap"]["name"], "kiali");
    assert_eq!(
        format!("{}/config.yaml", mount["mountPath"].as_str().unwrap()),
        *config
    );
    // The store's data directory is its volume, and the image's.
    let store = container(object(&objects, "StatefulSet", "meshtrace-store"));
    let args = str_args(store);
    let data = args
        .iter()
        .skip_while(|a| **a != "--data-dir")
        .nth(1)
        .expect("--data-dir");
    assert_eq!(store["volumeMounts"][0]["mountPath"], *data);
    let volumes: Vec<String> = support::final_stage()
        .iter()
        .filter(|(k, _)| k == "VOLUME")
        .flat_map(|(_, rest)| serde_json::from_str::<Vec<String>>(rest).unwrap())
        .collect();
    assert_eq!(volumes, [*data]);
}

/// A container's `args`, as strings.
fn str_args(container: &Value) -> Vec<&str> {
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}
