//! Tempo search answers for tests, made from one that Tempo really gave.

use serde_json::{Value, json};

/// `real`'s first trace once per mesh: `mesh_id` set to each of `meshes` (`None`: not set) on
/// every span, and a trace ID ending in the mesh's index; `real`'s metrics kept.
pub fn answer_per_mesh(real: &Value, meshes: &[Option<&str>]) -> Value {
    let traces: Vec<Value> = meshes
        .iter()
        .enumerate()
        .map(|(i, mesh)| {
            let mut trace = real["traces"][0].clone();
            let id = trace["traceID"].as_str().unwrap().to_string();
            trace["traceID"] = json!(format!("{}{i}", &id[..id.len() - 1]));
            for span in trace["spanSets"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .flat_map(|s| s["spans"].as_array_mut().unwrap())
            {
                if let Some(mesh) = mesh {
                    span["attributes"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"key": "mesh_id", "value": {"stringValue": mesh}}));
                }
            }
            trace
        })
        .collect();
    json!({ "traces": traces, "metrics": real["metrics"] })
}
