//! The graph page (`/console/graph/namespaces`): Kiali's mesh graph drawn on the server.

pub(super) mod draw;
pub(super) mod layout;
