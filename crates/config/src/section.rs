//! How a section of Kiali's settings is declared: one row per key — its doc, its field and type,
//! Kiali's default, and how its value is read — from which [`section!`] writes the struct, its
//! `Default`, its `Serialize` (what `config show` prints) and the key table the decoder walks.
//! Adding a key to a section is adding its row.
//!
//! Why a table and not `#[derive(Deserialize)]`: serde stops at the first error, while a
//! configuration check must report every problem at once, each at its line and column, with the
//! nearest valid key for a typo; the decoder reads our own YAML tree (which keeps positions) and
//! this table tells it what each key is.

use crate::decode::Decoder;
use crate::yaml::Node;

/// Reads one key's value (`node`, at `path`) into its section, noting side facts in `seen`.
pub(crate) type Read<S> = fn(&mut Decoder, &Node, &str, &mut S, &mut <S as Section>::Seen);

/// One key of a section.
pub(crate) struct Key<S: Section> {
    pub name: &'static str,
    pub read: Read<S>,
}

/// A mapping of Kiali's settings that meshtrace reads, declared with [`section!`].
pub(crate) trait Section: Sized + 'static {
    /// What decoding learns beside the values: a key that was written, a value kept for a
    /// later check, a deprecated key's value.
    type Seen: Default;
    /// Whether an unknown key is an error (a section meshtrace reads whole). Otherwise the
    /// mapping also holds Kiali keys meshtrace ignores, and only a near miss of a key it reads
    /// gets a warning.
    const STRICT: bool;
    /// Every key, fields first in the order `config show` prints them, then any keys that
    /// are not fields (Kiali's deprecated names).
    const KEYS: &'static [Key<Self>];
    /// Runs once every key present has been read.
    fn finish(_: &mut Decoder, _: &str, _: &mut Self, _: &mut Self::Seen) {}
}

/// Declares a section. Each row is
///
/// ```text
/// /// What the key means.
/// field [as "key"]: Type = default [=> reader],
/// ```
///
/// The key is the field's name unless `as` names it. Without a reader the value is read by
/// its type ([`crate::decode::Plain`]); a reader is a `fn(&mut Decoder, &Node, &str, &mut
/// Section, &mut Seen)`. Field attributes (docs, `#[serde(...)]` for how `config show`
/// prints the value) pass through. The struct must derive `Serialize`, and not `Debug`: its
/// `Debug` is the serialized view. After the struct, `decode { ... }` says whether unknown keys
/// are errors, the `Seen` type, keys that are not fields (`extra`), and a `finish` step.
macro_rules! section {
    (@key $field:ident $key:literal) => { $key };
    (@key $field:ident) => { stringify!($field) };
    (@read $field:ident $read:expr) => { $read };
    (@read $field:ident) => {
        |d, node, path, section, _| d.read_into(node, path, &mut section.$field)
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident $(as $key:literal)?: $ty:ty = $default:expr $(=> $read:expr)?,
            )*
        }
        decode {
            strict: $strict:literal,
            seen: $seen:ty
            $(, extra: { $($extra_key:literal => $extra_read:expr),* $(,)? })?
            $(, finish: $finish:expr)?
            $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$field_meta])*
                $(#[serde(rename = $key)])?
                pub $field: $ty,
            )*
        }

        /// As `config show` prints it: secrets as `xxx`, URL passwords hidden. A derived
        /// `Debug` would print them.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let shown = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
                write!(f, "{} {shown}", stringify!($name))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default,)* }
            }
        }

        impl $crate::section::Section for $name {
            type Seen = $seen;
            const STRICT: bool = $strict;
            const KEYS: &'static [$crate::section::Key<Self>] = &[
                $($crate::section::Key {
                    name: section!(@key $field $($key)?),
                    read: section!(@read $field $($read)?),
                },)*
                $($($crate::section::Key { name: $extra_key, read: $extra_read },)*)?
            ];
            $(
                fn finish(
                    d: &mut $crate::decode::Decoder,
                    path: &str,
                    section: &mut Self,
                    seen: &mut Self::Seen,
                ) {
                    ($finish)(d, path, section, seen)
                }
            )?
        }
    };
}

pub(crate) use section;

/// The key names of a section in alphabetical order, as messages list them.
pub(crate) fn key_names<S: Section>() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = S::KEYS.iter().map(|key| key.name).collect();
    names.sort_unstable();
    names
}
