//! The shape readers of the decoder: a mapping (strict or lenient about unknown keys), and the
//! scalars, lists and maps inside it, each reporting what is wrong at its path and position.

use std::collections::BTreeMap;

use super::Decoder;
use crate::credential::Credential;
use crate::diag::{nearest, quote};
use crate::yaml::{Node, Style, Value, join};

impl Decoder {
    /// A mapping whose unknown keys are errors. Returns the known entries in file order.
    pub(crate) fn strict<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&'static str],
    ) -> Option<Vec<(&'static str, &'n Node)>> {
        let entries = self.mapping(Some(node), path)?;
        let mut fields = Vec::new();
        for (key, value) in entries {
            let name = key.scalar().unwrap_or("");
            let key_path = join(path, name);
            if let Some(known_key) = known.iter().find(|k| **k == name) {
                self.positions.insert(key_path, value.pos);
                fields.push((*known_key, value));
                continue;
            }
            let mut message = format!("unknown key `{name}`");
            match nearest(name, known) {
                Some(near) => message.push_str(&format!("; did you mean `{near}`?")),
                None => message.push_str(&format!("; valid keys here: {}", known.join(", "))),
            }
            self.error(&key_path, Some(key.pos), message);
        }
        Some(fields)
    }

    /// A mapping whose other keys are accepted silently, except near-misses of the keys
    /// meshtrace reads, which get a warning when the intended key is missing.
    pub(crate) fn lenient<'n>(
        &mut self,
        node: Option<&'n Node>,
        path: &str,
        reads: &[&str],
    ) -> Option<&'n Node> {
        let entries = self.mapping(node, path)?;
        // Found once, not per key: a mapping may hold many thousands of keys.
        let present: Vec<&str> = reads
            .iter()
            .copied()
            .filter(|read| entries.iter().any(|(k, _)| k.scalar() == Some(*read)))
            .collect();
        for (key, _) in entries {
            let name = key.scalar().unwrap_or("");
            if reads.contains(&name) {
                continue;
            }
            let Some(near) = nearest(name, reads) else {
                continue;
            };
            if present.contains(&near) {
                continue;
            }
            let key_path = join(path, name);
            self.warning(
                &key_path,
                Some(key.pos),
                format!("`{name}` is not a key meshtrace reads, and `{near}` is missing: did you mean `{near}`?"),
            );
        }
        node
    }

    pub(crate) fn mapping<'n>(
        &mut self,
        node: Option<&'n Node>,
        path: &str,
    ) -> Option<&'n [(Node, Node)]> {
        let node = node?;
        if node.is_null() {
            return None;
        }
        match &node.value {
            Value::Map(entries) => Some(entries),
            _ => {
                let found = node.kind();
                self.error(
                    path,
                    Some(node.pos),
                    format!("expected a mapping of keys, found {found}"),
                );
                None
            }
        }
    }

    /// Records a value's position under its path and passes on non-null values.
    pub(crate) fn present<'n>(&mut self, node: Option<&'n Node>, path: &str) -> Option<&'n Node> {
        let node = node?;
        self.positions.insert(path.to_string(), node.pos);
        (!node.is_null()).then_some(node)
    }

    pub(crate) fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        let node = self.present(Some(node), path)?;
        if let Some(value) = node.as_typed_bool() {
            return Some(value);
        }
        let found = match &node.value {
            Value::Scalar(text, style)
                if *style != Style::Plain && matches!(&**text, "true" | "false") =>
            {
                format!("the string {}; write it without quotes", quote(text))
            }
            Value::Scalar(text, _) => format!("{} {}", node.kind(), quote(text)),
            _ => node.kind().to_string(),
        };
        self.error(
            path,
            Some(node.pos),
            format!("expected true or false, found {found}"),
        );
        None
    }

    pub(crate) fn int(
        &mut self,
        node: Option<&Node>,
        path: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let node = self.present(node, path)?;
        match node.as_int() {
            Some(value) if (min..=max).contains(&value) => Some(value),
            Some(value) => {
                let bounds = if max >= u32::MAX as i64 {
                    format!("must be at least {min}")
                } else {
                    format!("must be between {min} and {max}")
                };
                self.error(path, Some(node.pos), format!("{bounds}, found {value}"));
                None
            }
            None => {
                let found = match &node.value {
                    Value::Scalar(text, Style::Plain) => format!("{} {}", node.kind(), quote(text)),
                    Value::Scalar(text, _) if text.trim().parse::<i64>().is_ok() => {
                        format!("the string {}; write it without quotes", quote(text))
                    }
                    Value::Scalar(text, _) => format!("the string {}", quote(text)),
                    _ => node.kind().to_string(),
                };
                self.error(
                    path,
                    Some(node.pos),
                    format!("expected a whole number, found {found}"),
                );
                None
            }
        }
    }

    /// Any scalar is accepted as a string (as Go's yaml.v3 does: `org_id: 1` is `"1"`). Messages
    /// about strings never quote the value: it may be a secret.
    pub(crate) fn string(&mut self, node: Option<&Node>, path: &str) -> Option<String> {
        let node = self.present(node, path)?;
        match &node.value {
            Value::Scalar(text, _) => Some(text.to_string()),
            _ => {
                let found = node.kind();
                self.error(
                    path,
                    Some(node.pos),
                    format!("expected a string, found {found}"),
                );
                None
            }
        }
    }

    pub(crate) fn secret(&mut self, node: &Node, path: &str) -> Option<Credential> {
        self.string(Some(node), path).map(Credential::new)
    }

    /// A string that must be one of `allowed`.
    pub(crate) fn choice(&mut self, node: &Node, path: &str, allowed: &[&str]) -> Option<String> {
        let value = self.string(Some(node), path)?;
        if allowed.contains(&value.as_str()) {
            return Some(value);
        }
        let listed: Vec<&str> = allowed.iter().copied().filter(|a| !a.is_empty()).collect();
        let mut message = format!(
            "found {}; expected one of: {}",
            quote(&value),
            listed.join(", ")
        );
        if let Some(near) = nearest(&value, &listed) {
            message.push_str(&format!(" (did you mean `{near}`?)"));
        }
        self.error(path, Some(node.pos), message);
        None
    }

    pub(crate) fn string_map(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<BTreeMap<String, String>> {
        let node = self.present(Some(node), path);
        let entries = self.mapping(node, path)?;
        let mut map = BTreeMap::new();
        for (key, value) in entries {
            let name = key.scalar().unwrap_or("").to_string();
            let value_path = join(path, &name);
            if let Some(text) = self.string(Some(value), &value_path) {
                map.insert(name, text);
            } else if value.is_null() {
                map.insert(name, String::new());
            }
        }
        Some(map)
    }

    pub(crate) fn string_list(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let node = self.present(Some(node), path)?;
        let Value::Seq(items) = &node.value else {
            let found = node.kind();
            self.error(
                path,
                Some(node.pos),
                format!("expected a list of strings, found {found}"),
            );
            return None;
        };
        let mut list = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(text) = self.string(Some(item), &format!("{path}[{i}]")) {
                list.push(text);
            }
        }
        Some(list)
    }
}
