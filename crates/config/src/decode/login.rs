//! The readers of Kiali's `auth` section that do more than read a value by its type.
//! (The lints `decode` denies apply here too.)

use super::Decoder;
use crate::schema::{ApiToken, AuthConfig, AuthStrategy, OpenIdConfig};
use crate::yaml::Node;

/// What reading `auth` learnt beside its values.
#[derive(Default)]
pub(crate) struct AuthSeen {
    /// Whether `strategy` was written with a valid value.
    pub strategy_given: bool,
}

pub(crate) fn strategy(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    auth: &mut AuthConfig,
    seen: &mut AuthSeen,
) {
    if let Some(name) = d.choice(node, path, &AuthStrategy::NAMES)
        && let Some(strategy) = AuthStrategy::parse(&name)
    {
        auth.strategy = strategy;
        seen.strategy_given = true;
    }
}

pub(crate) fn api_token(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    openid: &mut OpenIdConfig,
    _: &mut (),
) {
    match d
        .choice(node, path, &["id_token", "access_token"])
        .as_deref()
    {
        Some("access_token") => openid.api_token = ApiToken::AccessToken,
        Some(_) => openid.api_token = ApiToken::IdToken,
        None => {}
    }
}

/// A Kiali mapping meshtrace does not use (`auth.openshift`): known, so not a typo, and not
/// read further.
pub(crate) fn ignored(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    _: &mut AuthConfig,
    _: &mut AuthSeen,
) {
    d.lenient(Some(node), path, &[]);
}
