//! Kiali's graph API (`/api/namespaces/graph` and the node graphs).
//!
//! [`kiali_golden`]: the graph built from the Prometheus answers of Kiali's own graph tests
//! equals Kiali's golden JSON for them; [`bookinfo`]: a real store fed by the simulator, the
//! console asking its Prometheus API, the Bookinfo topology, rates and error rates for every
//! graph type; [`bad_input`]: the answers to bad requests and a failing metrics source;
//! [`page`]: the graph page in Chromium (drawing, trace overlay, side panel);
//! [`security_policy`]: the `securityPolicy` appender (`isMTLS`, principals) against Kiali's own
//! appender tests, the store and a real Prometheus scraping the simulator.

mod bad_input;
mod bookinfo;
#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../browser/driver.rs"]
mod driver;
mod kiali_golden;
mod page;
mod security_policy;
