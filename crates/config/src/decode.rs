//! Reads the settings tree of a Kiali config into [`Config`], collecting every problem instead
//! of stopping at the first.
//!
//! Outside the sections meshtrace reads whole (`external_services.tracing` and `.prometheus`) a real Kiali config
//! has hundreds of keys meshtrace does not use; those are accepted silently, except that a key
//! one typo away from a key meshtrace reads (and that is missing) gets a warning. Inside such a
//! section every key is known, so an unknown key is an error that names the nearest valid one.
//! Which keys there are, and how each is read, is declared once per section in `schema`.

use std::collections::{BTreeMap, HashMap};

use crate::credential::Credential;
use crate::diag::Diagnostic;
use crate::schema::{Config, InputShape};
use crate::section::{Section, key_names};
use crate::yaml::{Node, Pos, join};

pub(crate) mod auth;
pub(crate) mod login;
pub(crate) mod prometheus;
mod shapes;
pub(crate) mod tracing;

/// What decoding found, before validation.
pub(crate) struct Decoded {
    pub config: Config,
    /// What reading `external_services.tracing` learnt beside its values.
    pub tracing: tracing::TracingSeen,
    /// The same for `external_services.prometheus`.
    pub prometheus: prometheus::PrometheusSeen,
    /// The same for Kiali's `auth`.
    pub auth: login::AuthSeen,
}

pub(crate) struct Decoder {
    /// `spec` for a Kiali CR, empty otherwise: every reported path starts with it.
    prefix: String,
    pub diags: Vec<Diagnostic>,
    /// Where each value that was read stands, by its path (without the prefix).
    pub positions: HashMap<String, Pos>,
}

impl Decoder {
    pub fn new(prefix: &str) -> Self {
        Decoder {
            prefix: prefix.to_string(),
            diags: Vec::new(),
            positions: HashMap::new(),
        }
    }

    pub fn full_path(&self, path: &str) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{path}", self.prefix),
        }
    }

    pub fn error(&mut self, path: &str, pos: Option<Pos>, message: impl Into<String>) {
        let full = self.full_path(path);
        self.diags.push(Diagnostic::error(full, pos, message));
    }

    pub fn warning(&mut self, path: &str, pos: Option<Pos>, message: impl Into<String>) {
        let full = self.full_path(path);
        self.diags.push(Diagnostic::warning(full, pos, message));
    }

    /// An error at the position of the key `path` names.
    pub fn error_at(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.pos(path);
        self.error(path, pos, message);
    }

    /// A warning at the position of the key `path` names.
    pub fn warning_at(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.pos(path);
        self.warning(path, pos, message);
    }

    pub fn pos(&self, path: &str) -> Option<Pos> {
        self.positions.get(path).copied()
    }

    /// Decodes the settings mapping (the whole config.yaml, or a CR's `spec`).
    pub fn decode(&mut self, settings: Option<&Node>, shape: InputShape) -> Decoded {
        let mut decoded = Decoded {
            config: Config {
                shape,
                ..Config::default()
            },
            tracing: tracing::TracingSeen::default(),
            prometheus: prometheus::PrometheusSeen::default(),
            auth: login::AuthSeen::default(),
        };
        crate::root::read(self, settings, &mut decoded);
        decoded
    }

    /// Reads a section's mapping at `path` by its key table, and returns what it learnt on the
    /// way. A strict section reads every entry in file order and refuses unknown keys; another
    /// reads the keys it knows, as they first appear.
    pub(crate) fn section<S: Section>(
        &mut self,
        node: &Node,
        path: &str,
        target: &mut S,
    ) -> S::Seen {
        let mut seen = S::Seen::default();
        let names = key_names::<S>();
        if S::STRICT {
            let Some(fields) = self.strict(node, path, &names) else {
                return seen;
            };
            for (name, value) in fields {
                if let Some(key) = S::KEYS.iter().find(|key| key.name == name) {
                    (key.read)(self, value, &join(path, name), target, &mut seen);
                }
            }
        } else {
            let Some(node) = self.lenient(Some(node), path, &names) else {
                return seen;
            };
            for key in S::KEYS {
                if let Some(value) = node.get(key.name) {
                    (key.read)(self, value, &join(path, key.name), target, &mut seen);
                }
            }
        }
        S::finish(self, path, target, &mut seen);
        seen
    }

    /// Reads a value by its type alone into `target`, which keeps its default when the value
    /// is null or wrong.
    pub(crate) fn read_into<T: Plain>(&mut self, node: &Node, path: &str, target: &mut T) {
        set(target, T::read(self, node, path));
    }

    /// A TCP port, 1–65535.
    pub(crate) fn port(&mut self, node: &Node, path: &str) -> Option<u16> {
        let port = self.int(Some(node), path, 1, 65535)?;
        u16::try_from(port).ok()
    }

    /// A positive whole number of seconds.
    pub(crate) fn positive_secs(&mut self, node: &Node, path: &str) -> Option<u64> {
        let secs = self.int(Some(node), path, i64::MIN, i64::MAX)?;
        if secs <= 0 {
            let pos = self.pos(path);
            self.error(
                path,
                pos,
                format!("must be a positive number of seconds, found {secs}"),
            );
            return None;
        }
        u64::try_from(secs).ok()
    }

    /// Applies a deprecated key the way Kiali does: a non-empty old value replaces the new one.
    /// Returns whether it did.
    pub(crate) fn alias(
        &mut self,
        base: &str,
        old: (&str, Option<String>),
        new: &str,
        target: &mut String,
    ) -> bool {
        let (old_key, Some(old_value)) = old else {
            return false;
        };
        if old_value.is_empty() {
            return false;
        }
        let old_path = format!("{base}.{old_key}");
        let pos = self.pos(&old_path);
        if !target.is_empty() && *target != old_value {
            let new_path = self.full_path(&format!("{base}.{new}"));
            self.warning(
                &old_path,
                pos,
                format!(
                    "both `{old_key}` and `{new_path}` are set, to different values; \
                     the deprecated `{old_key}` wins, as in Kiali: remove it and keep `{new}`"
                ),
            );
        } else {
            self.warning(
                &old_path,
                pos,
                format!("`{old_key}` is deprecated: rename it to `{new}`"),
            );
        }
        *target = old_value;
        true
    }
}

/// A value read by its type alone: what a section row without a reader gets.
pub(crate) trait Plain: Sized {
    fn read(d: &mut Decoder, node: &Node, path: &str) -> Option<Self>;
}

impl Plain for bool {
    fn read(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        d.bool(node, path)
    }
}

impl Plain for String {
    fn read(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        d.string(Some(node), path)
    }
}

impl Plain for Credential {
    fn read(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        d.secret(node, path)
    }
}

impl Plain for Vec<String> {
    fn read(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        d.string_list(node, path)
    }
}

impl Plain for BTreeMap<String, String> {
    fn read(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        d.string_map(node, path)
    }
}

pub(crate) fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}
