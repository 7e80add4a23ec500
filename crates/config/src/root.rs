//! The keys meshtrace reads outside the sections' own mappings, one row each: where the key
//! stands from the top of the settings, how it is read, and how `config show` prints it. The
//! mappings on the way (`deployment`, `kiali_feature_flags`, ...) hold Kiali keys meshtrace
//! ignores, so they are read leniently: only a near miss of a key read here gets a warning.
//! The rows' order is the order `config show` prints them in.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::decode::{Decoded, Decoder, set};
use crate::schema::Config;
use crate::yaml::{Node, join};

pub(crate) struct RootKey {
    pub path: &'static [&'static str],
    pub read: fn(&mut Decoder, &Node, &str, &mut Decoded),
    pub show: fn(&Config) -> Value,
}

/// The row of a string key read into the field of [`Config`] it names.
macro_rules! text {
    ($path:expr, $field:ident) => {
        RootKey {
            path: $path,
            read: |d, node, path, decoded| {
                set(&mut decoded.config.$field, d.string(Some(node), path));
            },
            show: |config| config.$field.as_str().into(),
        }
    };
}

pub(crate) const ROOT: &[RootKey] = &[
    RootKey {
        path: &["external_services", "tracing"],
        read: |d, node, path, decoded| {
            decoded.tracing = d.section(node, path, &mut decoded.config.tracing);
        },
        show: |config| shown(&config.tracing),
    },
    RootKey {
        path: &["external_services", "prometheus"],
        read: |d, node, path, decoded| {
            decoded.config.prometheus_given = node.entries().is_some_and(|e| !e.is_empty());
            decoded.prometheus = d.section(node, path, &mut decoded.config.prometheus);
        },
        show: |config| shown(&config.prometheus),
    },
    RootKey {
        path: &["kiali_feature_flags", "ui_defaults", "tracing", "limit"],
        read: ui_tracing_limit,
        show: |config| config.ui_tracing_limit.into(),
    },
    RootKey {
        path: &["server"],
        read: |d, node, path, decoded| {
            d.section(node, path, &mut decoded.config.server);
        },
        show: |config| shown(&config.server),
    },
    RootKey {
        path: &["auth"],
        read: |d, node, path, decoded| {
            decoded.auth = d.section(node, path, &mut decoded.config.auth);
        },
        show: |config| shown(&config.auth),
    },
    RootKey {
        path: &["login_token"],
        read: |d, node, path, decoded| {
            d.section(node, path, &mut decoded.config.login_token);
        },
        show: |config| shown(&config.login_token),
    },
    text!(&["istio_namespace"], istio_namespace),
    text!(&["deployment", "namespace"], deployment_namespace),
    text!(&["kubernetes_config", "cluster_name"], cluster_name),
];

/// Keys of Kiali beside the ones read here, by the mapping they stand in: known, so that a
/// typo of one is not reported as a typo of a key meshtrace reads.
const ALSO_KNOWN: &[(&[&str], &[&str])] = &[(
    &["external_services"],
    &["custom_dashboards", "grafana", "istio", "perses"],
)];

/// Reads every row from the settings mapping (`None` for an empty document).
pub(crate) fn read(d: &mut Decoder, settings: Option<&Node>, decoded: &mut Decoded) {
    walk(d, settings, &[], decoded);
}

/// Reads the rows under the mapping at `at`.
fn walk(d: &mut Decoder, node: Option<&Node>, at: &[&'static str], decoded: &mut Decoded) {
    let depth = at.len();
    let under: Vec<&RootKey> = ROOT.iter().filter(|k| k.path.starts_with(at)).collect();
    let mut reads: Vec<&str> = under
        .iter()
        .filter_map(|k| k.path.get(depth))
        .copied()
        .chain(
            ALSO_KNOWN
                .iter()
                .filter(|(place, _)| *place == at)
                .flat_map(|(_, keys)| keys.iter().copied()),
        )
        .collect();
    reads.sort_unstable();
    reads.dedup();
    let path = at.join(".");
    let Some(node) = d.lenient(node, &path, &reads) else {
        return;
    };
    let mut done: Vec<&str> = Vec::new();
    for key in under {
        let Some(segment) = key.path.get(depth).copied() else {
            continue;
        };
        if done.contains(&segment) {
            continue;
        }
        done.push(segment);
        let Some(child) = node.get(segment) else {
            continue;
        };
        let child_at = [at, &[segment]].concat();
        if key.path == child_at.as_slice() {
            (key.read)(d, child, &join(&path, segment), decoded);
        } else {
            walk(d, Some(child), &child_at, decoded);
        }
    }
}

fn ui_tracing_limit(d: &mut Decoder, node: &Node, path: &str, decoded: &mut Decoded) {
    let Some(limit) = d.int(Some(node), path, i64::MIN, i64::MAX) else {
        return;
    };
    match u32::try_from(limit) {
        Ok(limit) if (10..=1000).contains(&limit) => decoded.config.ui_tracing_limit = limit,
        _ => {
            let pos = d.pos(path);
            d.error(
                path,
                pos,
                format!("must be between 10 and 1000 (Kiali's bounds), found {limit}"),
            );
        }
    }
}

/// The effective configuration, shaped like the Kiali config it came from, secrets obfuscated.
pub fn effective(config: &Config) -> Value {
    let mut shown = Map::new();
    for key in ROOT {
        insert(&mut shown, key.path, (key.show)(config));
    }
    Value::Object(shown)
}

fn insert(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            map.insert((*last).to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = map
                .entry(*first)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// A section as JSON. It cannot fail: every map in the configuration has string keys.
fn shown(section: &impl Serialize) -> Value {
    serde_json::to_value(section).unwrap_or(Value::Null)
}
