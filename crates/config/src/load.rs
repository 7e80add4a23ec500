//! Finds the Kiali settings in whatever the user handed us — a `config.yaml`, a ConfigMap that
//! holds one, or a Kiali CR — decodes them, applies the operator's derived defaults for a CR,
//! and validates the result.
//!
//! The text may come from anyone (the console's tester loads posted drafts): it is refused
//! above [`MAX_CONFIG_BYTES`] before it is parsed, a file is read no further than that, and
//! ConfigMaps nested in ConfigMaps are followed [`MAX_EMBEDDED`] levels deep at most.

use std::io::Read;
use std::path::Path;

use crate::decode::Decoder;
use crate::diag::{Diagnostic, Location};
use crate::schema::{Config, InputShape};
use crate::validate::validate;
use crate::yaml::{self, Node, ParseError, Pos, Style};

/// The largest configuration accepted, in bytes: 4 MiB. Kubernetes stores a ConfigMap or a CR
/// in at most about 1.5 MiB, and a real Kiali config is a few KiB; the bound keeps what one
/// document can cost (time, memory) small.
pub const MAX_CONFIG_BYTES: usize = 4 << 20;

/// How deep a ConfigMap's `config.yaml` may itself be a ConfigMap holding another.
pub const MAX_EMBEDDED: usize = 4;

/// A configuration that loaded, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found, errors and warnings, in the order they stand in the file.
    #[error("the configuration has {} error(s)", .0.iter().filter(|d| d.is_error()).count())]
    Invalid(Vec<Diagnostic>),
}

/// Loads a configuration file, reading at most [`MAX_CONFIG_BYTES`] (and one byte more, to know
/// that it is larger).
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    let most = u64::try_from(MAX_CONFIG_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(most)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    load_bytes(&bytes).map_err(LoadError::Invalid)
}

/// Loads a configuration from bytes as they came (a file, a request body): refused when larger
/// than [`MAX_CONFIG_BYTES`] or not UTF-8, else as [`load_str`]. Never panics, whatever the
/// bytes; a fuzz target can call it directly.
pub fn load_bytes(bytes: &[u8]) -> Result<Loaded, Vec<Diagnostic>> {
    if let Some(too_large) = size_problem(bytes.len()) {
        return Err(vec![too_large]);
    }
    match std::str::from_utf8(bytes) {
        Ok(source) => load_str(source),
        Err(error) => {
            let valid = bytes.get(..error.valid_up_to()).unwrap_or_default();
            let line = valid
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                .saturating_add(1);
            let line_start = valid
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i.saturating_add(1));
            let col = valid.len().saturating_sub(line_start).saturating_add(1);
            Err(vec![Diagnostic::error(
                "",
                Some(Pos { line, col }),
                "not UTF-8 text: a configuration is YAML or JSON, which are UTF-8",
            )])
        }
    }
}

/// The error for a configuration of `len` bytes, if that is too large.
fn size_problem(len: usize) -> Option<Diagnostic> {
    (len > MAX_CONFIG_BYTES).then(|| {
        Diagnostic::error(
            "",
            None,
            format!(
                "the configuration is too large: it holds more than {MAX_CONFIG_BYTES} bytes \
                 (4 MiB), the most meshtrace reads; a real Kiali config is a few KiB"
            ),
        )
    })
}

/// Loads a configuration from its text. On failure, returns every problem (errors and warnings).
/// Never panics, whatever the text.
pub fn load_str(source: &str) -> Result<Loaded, Vec<Diagnostic>> {
    if let Some(too_large) = size_problem(source.len()) {
        return Err(vec![too_large]);
    }
    let mut diags = Vec::new();
    let config = load_document(source, 0, &mut diags);
    diags.sort_by_key(|d| match &d.location {
        Location::File(pos) => (0, pos.line, pos.col),
        Location::Embedded { pos, .. } => (1, pos.line, pos.col),
        Location::None => (2, 0, 0),
    });
    match config {
        Some(config) if !diags.iter().any(Diagnostic::is_error) => Ok(Loaded {
            config,
            warnings: diags,
        }),
        _ => Err(diags),
    }
}

/// Loads one document; `nesting` counts the ConfigMaps it stands inside.
fn load_document(source: &str, nesting: usize, diags: &mut Vec<Diagnostic>) -> Option<Config> {
    let root = parse_one(source, diags)?;
    match root
        .as_ref()
        .and_then(|r| r.get("kind"))
        .and_then(Node::scalar)
    {
        None => Some(decode_settings(
            root.as_ref(),
            InputShape::ConfigYaml,
            None,
            diags,
        )),
        Some(kind) => from_manifest(root.as_ref()?, kind, nesting, diags),
    }
}

/// Parses a stream that must hold one document. `Some(None)` is an empty document.
fn parse_one(source: &str, diags: &mut Vec<Diagnostic>) -> Option<Option<Node>> {
    let stream = match yaml::parse(source) {
        Ok(stream) => stream,
        Err(ParseError::Syntax(error)) => {
            diags.push(Diagnostic::error(
                "",
                Some(error.pos),
                format!("not valid YAML: {}", error.message),
            ));
            return None;
        }
        Err(ParseError::Limit(error)) => {
            diags.push(Diagnostic::error("", Some(error.pos), error.message));
            return None;
        }
    };
    for duplicate in &stream.duplicates {
        diags.push(Diagnostic::error(
            duplicate.path.clone(),
            Some(duplicate.pos),
            format!("duplicate key (first set at line {})", duplicate.first.line),
        ));
    }
    if let Some((count, pos)) = stream.unlisted_duplicates {
        diags.push(Diagnostic::error(
            "",
            Some(pos),
            format!(
                "{count} more duplicate key(s) from here on, not listed one by one (the first {} are)",
                yaml::MAX_DUPLICATES
            ),
        ));
    }
    let documents: Vec<Node> = stream
        .documents
        .into_iter()
        .filter(|d| !d.is_null())
        .collect();
    let count = documents.len();
    let mut documents = documents.into_iter();
    match (documents.next(), documents.next()) {
        (None, _) => {
            diags.push(Diagnostic::warning(
                "",
                None,
                "the file holds no settings: every default applies",
            ));
            Some(None)
        }
        (Some(root), None) => {
            if root.entries().is_none() {
                let found = root.kind();
                diags.push(Diagnostic::error(
                    "",
                    Some(root.pos),
                    format!("expected a mapping of settings at the top, found {found}"),
                ));
                return None;
            }
            Some(Some(root))
        }
        (Some(_), Some(second)) => {
            diags.push(Diagnostic::error(
                "",
                Some(second.pos),
                format!(
                    "the file holds {count} YAML documents; give one: a Kiali config.yaml, \
                     a ConfigMap holding one, or a Kiali CR"
                ),
            ));
            None
        }
    }
}

fn metadata(root: &Node, key: &str) -> Option<String> {
    let value = root.get("metadata")?.get(key)?;
    value
        .scalar()
        .filter(|s| !s.is_empty() && !value.is_null())
        .map(str::to_string)
}

fn from_manifest(
    root: &Node,
    kind: &str,
    nesting: usize,
    diags: &mut Vec<Diagnostic>,
) -> Option<Config> {
    match kind {
        "Kiali" => {
            let name = metadata(root, "name").unwrap_or_else(|| "kiali".to_string());
            let shape = InputShape::KialiCr { name };
            let operator = Operator {
                cr_namespace: metadata(root, "namespace"),
            };
            Some(decode_settings(
                root.get("spec"),
                shape,
                Some(operator),
                diags,
            ))
        }
        "ConfigMap" => {
            let name = metadata(root, "name").unwrap_or_else(|| "kiali".to_string());
            let data = root.get("data");
            let Some(embedded) = data.and_then(|d| d.get("config.yaml")) else {
                let keys: Vec<&str> = data
                    .and_then(Node::entries)
                    .map(|e| e.iter().filter_map(|(k, _)| k.scalar()).collect())
                    .unwrap_or_default();
                let found = if keys.is_empty() {
                    "no data keys".to_string()
                } else {
                    format!("data keys: {}", keys.join(", "))
                };
                diags.push(Diagnostic::error(
                    "data",
                    data.map(|d| d.pos).or(Some(root.pos)),
                    format!("a Kiali ConfigMap holds its settings under `data.\"config.yaml\"`; found {found}"),
                ));
                return None;
            };
            let Some(text) = embedded.scalar() else {
                diags.push(Diagnostic::error(
                    "data.\"config.yaml\"",
                    Some(embedded.pos),
                    format!(
                        "expected the Kiali config as a string, found {}",
                        embedded.kind()
                    ),
                ));
                return None;
            };
            if nesting >= MAX_EMBEDDED {
                diags.push(Diagnostic::error(
                    "data.\"config.yaml\"",
                    Some(embedded.pos),
                    format!(
                        "a ConfigMap's config.yaml holds another ConfigMap more than \
                         {MAX_EMBEDDED} levels deep; give the Kiali config.yaml itself"
                    ),
                ));
                return None;
            }
            let mut inner = Vec::new();
            let config = load_document(text, nesting.saturating_add(1), &mut inner);
            let map = EmbeddedMap::new(embedded);
            diags.extend(inner.into_iter().map(|d| map.apply(d)));
            let mut config = config?;
            config.shape = InputShape::ConfigMap { name };
            Some(config)
        }
        "List" => {
            let items = root.get("items").and_then(Node::items);
            let candidates: Vec<&Node> = items
                .into_iter()
                .flatten()
                .filter(|item| {
                    matches!(
                        item.get("kind").and_then(Node::scalar),
                        Some("Kiali" | "ConfigMap")
                    )
                })
                .collect();
            match candidates.as_slice() {
                [one] => from_manifest(one, one.get("kind")?.scalar()?, nesting, diags),
                _ => {
                    diags.push(Diagnostic::error(
                        "items",
                        Some(root.pos),
                        format!(
                            "a List must hold exactly one Kiali CR or ConfigMap; it holds {}",
                            candidates.len()
                        ),
                    ));
                    None
                }
            }
        }
        other => {
            let kind_pos = root.get("kind").map(|k| k.pos);
            diags.push(Diagnostic::error(
                "kind",
                kind_pos,
                format!(
                    "found kind `{other}`; expected a Kiali config.yaml (no `kind`), \
                     a ConfigMap holding `config.yaml`, or a Kiali CR (`kind: Kiali`)"
                ),
            ));
            None
        }
    }
}

/// A Kiali CR is read through the operator's eyes: it derives defaults before Kiali sees them.
struct Operator {
    cr_namespace: Option<String>,
}

fn decode_settings(
    settings: Option<&Node>,
    shape: InputShape,
    operator: Option<Operator>,
    diags: &mut Vec<Diagnostic>,
) -> Config {
    let prefix = if operator.is_some() { "spec" } else { "" };
    let mut decoder = Decoder::new(prefix);
    let mut decoded = decoder.decode(settings, shape);
    if let Some(operator) = operator {
        apply_operator_defaults(&mut decoded.config, settings, operator.cr_namespace);
    }
    validate(&mut decoder, &decoded);
    diags.append(&mut decoder.diags);
    decoded.config
}

/// What the Kiali operator fills in before it writes the ConfigMap.
fn apply_operator_defaults(config: &mut Config, spec: Option<&Node>, cr_namespace: Option<String>) {
    let written = |path: &[&str]| {
        let mut node = spec?;
        for key in path {
            node = node.get(key)?;
        }
        node.scalar()
            .filter(|s| !s.is_empty() && !node.is_null())
            .map(str::to_string)
    };
    if written(&["deployment", "namespace"]).is_none() {
        // The operator installs Kiali in the namespace of its CR.
        if let Some(namespace) = cr_namespace {
            config.deployment_namespace = namespace;
        }
    }
    let tracing = &mut config.tracing;
    if tracing.internal_url.is_empty() {
        let namespace = &config.deployment_namespace;
        tracing.internal_url = if tracing.use_grpc {
            format!("http://tracing.{namespace}:16685/jaeger")
        } else {
            format!("http://tracing.{namespace}/jaeger")
        };
    }
    // The operator's defaults for Prometheus: `is_core: true`, and for an enabled Prometheus
    // with no URL, the `prometheus` service in Kiali's namespace.
    let prometheus = &mut config.prometheus;
    if written(&["external_services", "prometheus", "is_core"]).is_none() {
        prometheus.is_core = true;
    }
    if prometheus.enabled && written(&["external_services", "prometheus", "url"]).is_none() {
        let namespace = &config.deployment_namespace;
        prometheus.url = format!("http://prometheus.{namespace}:9090");
    }
    let web_root = &mut config.server.web_root;
    if written(&["server", "web_root"]).is_none() {
        *web_root = "/kiali".to_string();
    } else if web_root.len() > 1 && web_root.ends_with('/') {
        web_root.pop();
    }
}

/// Maps positions inside a ConfigMap's embedded `config.yaml` onto the file's lines. A `|`
/// block keeps lines one for one; any other style cannot be mapped, so such positions stay
/// relative to the embedded text.
struct EmbeddedMap {
    /// For a literal block: the file line of the embedded text's first line, and its indent.
    literal: Option<(usize, usize)>,
}

impl EmbeddedMap {
    fn new(embedded: &Node) -> Self {
        let literal = match &embedded.value {
            // The parser places a block scalar at its first non-blank content line, whose
            // indent is the block's; leading blank lines are part of the text.
            yaml::Value::Scalar(text, Style::Literal) => {
                let blank_lines = text
                    .len()
                    .saturating_sub(text.trim_start_matches('\n').len());
                Some((
                    embedded.pos.line.saturating_sub(blank_lines).max(1),
                    embedded.pos.col.saturating_sub(1),
                ))
            }
            _ => None,
        };
        EmbeddedMap { literal }
    }

    fn apply(&self, mut diag: Diagnostic) -> Diagnostic {
        if let Location::File(pos) = diag.location {
            diag.location = match self.literal {
                Some((first_line, indent)) => Location::File(Pos {
                    line: first_line.saturating_add(pos.line).saturating_sub(1),
                    col: indent.saturating_add(pos.col),
                }),
                None => Location::Embedded {
                    field: "data.\"config.yaml\"".to_string(),
                    pos,
                },
            };
        }
        diag
    }
}
