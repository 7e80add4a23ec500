//! The readers of `external_services.prometheus` that do more than read a value by its type.
//! (The lints `decode` denies apply here too.)

use super::{Decoder, set};
use crate::schema::PrometheusConfig;
use crate::yaml::Node;

/// What reading the section learnt beside its values.
#[derive(Default)]
pub(crate) struct PrometheusSeen {
    /// Whether `auth.type` held an unknown value (checks that depend on the type are skipped).
    pub bad_auth_type: bool,
}

/// Whole seconds, 0 or more: 0 turns the cache's hits off (Kiali serves a cached answer only
/// to a query less than this much younger).
pub(crate) fn cache_duration(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    prometheus: &mut PrometheusConfig,
    _: &mut PrometheusSeen,
) {
    let secs = d.int(Some(node), path, 0, u32::MAX.into());
    set(
        &mut prometheus.cache_duration_secs,
        secs.and_then(|s| u64::try_from(s).ok()),
    );
}
