//! Names: what the console asks the backend for, and how a pod name maps to its workload.

use meshtrace_model::{Span, Value};

/// The three kinds of detail page a Kiali user opens traces from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    App,
    Workload,
    Service,
}

impl Kind {
    /// The path segment of Kiali's routes: `apps`, `workloads`, `services`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::App => "apps",
            Kind::Workload => "workloads",
            Kind::Service => "services",
        }
    }

    pub fn from_plural(segment: &str) -> Option<Kind> {
        match segment {
            "apps" => Some(Kind::App),
            "workloads" => Some(Kind::Workload),
            "services" => Some(Kind::Service),
            _ => None,
        }
    }
}

/// An app, workload or service of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// The app the target belongs to (Kiali's `Lookup`): the app itself, the `app` label of a
    /// workload, the app behind a service. Found in the inventory; when unknown, the name.
    pub app: String,
}

impl Target {
    /// The service name the tracing backend files the target's spans under: `<app>.<ns>` when
    /// `namespace_selector` is on (Kiali's default; Istio's proxies report that name), else
    /// `<app>`.
    pub fn tracing_service_name(&self, namespace_selector: bool) -> String {
        if namespace_selector && !self.app.contains(".svc.") {
            format!("{}.{}", self.app, self.namespace)
        } else {
            self.app.clone()
        }
    }
}

/// A string tag of the span, or of its process.
pub fn tag_str<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    let own = span.tags.iter().find(|kv| kv.key == key);
    let value = own.or_else(|| span.process.tags.iter().find(|kv| kv.key == key))?;
    match &value.value {
        Value::Str(s) => Some(s.as_str()),
        _ => None,
    }
}

/// The workload of a pod: the pod name without the ReplicaSet hash and the pod suffix
/// (`reviews-v2-7d8f9c6b5-x2kqp` → `reviews-v2`), or without the suffix only for a pod of a
/// StatefulSet or DaemonSet (`ztunnel-4xk2p` → `ztunnel`). A name without dashes is its own
/// workload.
pub fn pod_workload(pod: &str) -> &str {
    let Some((rest, suffix)) = pod.rsplit_once('-') else {
        return pod;
    };
    if !is_pod_suffix(suffix) {
        return pod;
    }
    match rest.rsplit_once('-') {
        Some((workload, hash)) if is_replicaset_hash(hash) => workload,
        _ => rest,
    }
}

/// Kubernetes' random pod suffix: 5 characters from its alphabet.
fn is_pod_suffix(s: &str) -> bool {
    s.len() == 5
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A ReplicaSet's pod-template hash: 6 to 10 lowercase letters and digits, at least one a
/// digit (Kubernetes draws them from an alphabet without vowels; older clusters and tools
/// write hex), which tells it from a word of the workload's name.
fn is_replicaset_hash(s: &str) -> bool {
    (6..=10).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_map_to_their_workloads() {
        assert_eq!(pod_workload("reviews-v2-7d8f9c6b5-x2kqp"), "reviews-v2");
        assert_eq!(
            pod_workload("productpage-v1-5d9b4c9849-lq7m2"),
            "productpage-v1"
        );
        assert_eq!(
            pod_workload("istio-ingressgateway-6b7d8c9f4d-abcde"),
            "istio-ingressgateway"
        );
        assert_eq!(pod_workload("ztunnel-4xk2p"), "ztunnel");
        assert_eq!(pod_workload("web-0"), "web-0");
        assert_eq!(pod_workload("standalone"), "standalone");
    }

    #[test]
    fn service_names_follow_namespace_selector() {
        let target = Target {
            kind: Kind::Workload,
            namespace: "bookinfo".into(),
            name: "reviews-v2".into(),
            app: "reviews".into(),
        };
        assert_eq!(target.tracing_service_name(true), "reviews.bookinfo");
        assert_eq!(target.tracing_service_name(false), "reviews");
    }
}
