//! The readers of an `auth` section that do more than read a value by its type.
//! (The lints `decode` denies apply here too.)

use super::Decoder;
use crate::schema::{Auth, AuthType, OAuth2, OAuth2AuthStyle};
use crate::yaml::Node;

pub(crate) struct AuthSeen {
    /// False when `type` held an unknown value: the checks that depend on it are skipped.
    pub type_known: bool,
}

impl Default for AuthSeen {
    fn default() -> Self {
        AuthSeen { type_known: true }
    }
}

pub(crate) fn kind(d: &mut Decoder, node: &Node, path: &str, auth: &mut Auth, seen: &mut AuthSeen) {
    match d.choice(node, path, &AuthType::NAMES) {
        Some(kind) => auth.kind = AuthType::parse(&kind).unwrap_or(AuthType::None),
        None => seen.type_known = node.is_null(),
    }
}

pub(crate) fn auth_style(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    oauth2: &mut OAuth2,
    _: &mut (),
) {
    match d.choice(node, path, &["header", "params", ""]).as_deref() {
        Some("params") => oauth2.auth_style = OAuth2AuthStyle::Params,
        Some(_) => oauth2.auth_style = OAuth2AuthStyle::Header,
        None => {}
    }
}
