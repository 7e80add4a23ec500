//! The topology's unit tests: the built-in mesh, the checks and the bounds.

use super::*;

#[test]
fn bookinfo_is_valid_and_lays_out_kubernetes_names() {
    let topology = Topology::bookinfo();
    topology.check().unwrap();
    let mesh = Mesh::new(topology, 1, 1);
    let reviews = &mesh.workloads[mesh.service_index("reviews")];
    assert_eq!(reviews.len(), 3);
    let pod = &reviews[1].pods[0].name;
    assert!(pod.starts_with("reviews-v2-"), "{pod}");
    let parts: Vec<&str> = pod.rsplitn(3, '-').collect();
    assert_eq!(parts[0].len(), 5);
    assert_eq!(parts[1].len(), 9);
    assert_eq!(reviews[2].pods.len(), 3);
    let gateway = &mesh.workloads[0][0].pods[0].name;
    assert!(gateway.starts_with("istio-ingressgateway-"));
}

#[test]
fn loops_and_unknown_services_are_refused() {
    let mut topology = Topology::bookinfo();
    topology.services[4].calls.push(Call {
        service: "productpage".into(),
        path: "/".into(),
    });
    assert!(topology.check().unwrap_err().contains("loop"));
    let mut topology = Topology::bookinfo();
    topology.services[2].calls.push(Call {
        service: "nowhere".into(),
        path: "/".into(),
    });
    assert_eq!(
        topology.check().unwrap_err(),
        "`details` calls unknown service `nowhere`"
    );
}

#[test]
fn a_fan_out_at_every_level_is_refused() {
    // s0 calls s1 twice, s1 calls s2 twice, ...: 2^11 - 1 hops per request.
    let services: Vec<ServiceDef> = (0..11)
        .map(|i| ServiceDef {
            name: format!("s{i}"),
            namespace: "deep".into(),
            port: 80,
            gateway: false,
            protocol: Protocol::Http,
            versions: vec![VersionDef {
                version: "v1".into(),
                pods: 1,
                latency_ms: 1.0,
                sigma: 0.3,
            }],
            calls: if i < 10 {
                let call = Call {
                    service: format!("s{}", i + 1),
                    path: "/".into(),
                };
                vec![call.clone(), call]
            } else {
                vec![]
            },
        })
        .collect();
    let topology = Topology {
        mesh_id: "cluster.local".into(),
        services,
        entries: vec![Entry {
            from: "s0".into(),
            call: Call {
                service: "s1".into(),
                path: "/".into(),
            },
            weight: 1.0,
        }],
    };
    assert_eq!(
        topology.check().unwrap_err(),
        "a request from `s0` would take 1023 hops; the limit is 1000"
    );
}

#[test]
fn an_oversized_file_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    std::fs::write(&path, " ".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
    let error = Topology::from_file(&path).unwrap_err().to_string();
    assert!(
        error.ends_with("is not valid: the file is over 1048576 bytes"),
        "{error}"
    );
}

#[test]
fn clusters_spread_workloads() {
    let mesh = Mesh::new(Topology::bookinfo(), 1, 2);
    let clusters: std::collections::BTreeSet<&str> = mesh
        .workloads
        .iter()
        .flatten()
        .flat_map(|w| w.pods.iter().map(|p| p.cluster.as_str()))
        .collect();
    assert_eq!(
        clusters.into_iter().collect::<Vec<_>>(),
        ["cluster-1", "cluster-2"]
    );
}
