//! Kiali's tracing routes over Jaeger gRPC and HTTP: the traces and spans of an app, a
//! workload and a service, error traces, a trace by ID, and the inventory.

use std::collections::BTreeSet;

use crate::{data, error, found, get, has_error, names, pod, setup, spans};

#[tokio::test(flavor = "multi_thread")]
async fn kiali_routes_over_grpc_and_http() {
    for use_grpc in [true, false] {
        let s = setup(1, use_grpc).await;
        let c = s.console;

        let (status, info) = get(c, "/api/tracing").await;
        assert_eq!(status, 200);
        assert_eq!(info["enabled"], true);
        assert_eq!(info["integration"], true);
        assert_eq!(info["provider"], "jaeger");
        assert_eq!(info["url"], "http://jaeger.example.com");

        // App traces: Kiali's TracingResponse.
        let body = found(
            c,
            "/api/namespaces/bookinfo/apps/productpage/traces?limit=50",
            "productpage.bookinfo",
        )
        .await;
        for trace in data(&body) {
            assert!(trace["traceID"].as_str().unwrap().len() == 32);
            assert!(
                trace["processes"]
                    .as_object()
                    .unwrap()
                    .values()
                    .any(|p| p["serviceName"] == "productpage.bookinfo")
            );
        }
        assert_eq!(
            body["partial"], true,
            "50 of 300 traces: the limit was reached"
        );
        assert!(
            body["errors"][0]["msg"]
                .as_str()
                .unwrap()
                .contains("limit of 50")
        );

        // A workload's traces all hold a span from one of its pods.
        let body = found(
            c,
            "/api/namespaces/bookinfo/workloads/reviews-v2/traces?limit=500",
            "reviews.bookinfo",
        )
        .await;
        let traces = data(&body);
        assert_eq!(body["partial"], false);
        for trace in traces {
            assert!(
                spans(trace)
                    .iter()
                    .any(|s| pod(s).starts_with("reviews-v2-")),
                "{trace}"
            );
        }
        // ...and not every reviews trace is one of reviews-v2's.
        let (_, all_reviews) =
            get(c, "/api/namespaces/bookinfo/apps/reviews/traces?limit=500").await;
        assert!(data(&all_reviews).len() > traces.len());

        // A service's traces hold a call to it.
        let (_, body) = get(
            c,
            "/api/namespaces/bookinfo/services/ratings/traces?limit=500",
        )
        .await;
        for trace in data(&body) {
            assert!(spans(trace).iter().any(|s| {
                s["operationName"]
                    .as_str()
                    .unwrap()
                    .starts_with("ratings.bookinfo.svc.cluster.local")
            }));
        }

        // Errors only.
        let (_, body) = get(c, "/api/namespaces/bookinfo/apps/productpage/traces?limit=500&tags=%7B%22error%22%3A%22true%22%7D").await;
        let failed = data(&body);
        assert!(!failed.is_empty());
        for trace in failed {
            assert!(spans(trace).iter().any(has_error));
        }
        let (status, count) = get(
            c,
            "/api/namespaces/bookinfo/apps/productpage/errortraces?duration=3600",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(count.as_u64().unwrap() as usize, failed.len());

        // Spans: the workload's own spans, with traceSize and what they say about the mesh.
        let (status, own) = get(
            c,
            "/api/namespaces/bookinfo/workloads/reviews-v2/spans?limit=500",
        )
        .await;
        assert_eq!(status, 200);
        let own = own.as_array().unwrap();
        assert!(!own.is_empty());
        for span in own {
            assert!(pod(span).starts_with("reviews-v2-"), "{span}");
            assert!(span["traceSize"].as_u64().unwrap() >= 2);
            assert_eq!(span["process"]["serviceName"], "reviews.bookinfo");
            assert_eq!(span["mesh"]["workload"], "reviews-v2");
            assert_eq!(span["mesh"]["app"], "reviews");
            assert!(["inbound", "outbound"].contains(&span["mesh"]["direction"].as_str().unwrap()));
        }

        // A trace by ID; malformed and unknown IDs.
        let id = traces[0]["traceID"].as_str().unwrap();
        let (status, body) = get(c, &format!("/api/traces/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["traceID"], id);
        assert_eq!(spans(&body["data"]).len(), spans(&traces[0]).len());
        let (status, body) = get(c, "/api/traces/not-hex").await;
        assert_eq!(status, 400);
        assert!(error(&body).starts_with("Invalid trace ID format"));
        let (status, body) = get(c, "/api/traces/00000000000000000000000000abcdef").await;
        assert_eq!(status, 404);
        assert_eq!(
            body["error"],
            "Trace 00000000000000000000000000abcdef not found"
        );

        // Inventory.
        let (status, body) = get(c, "/api/namespaces").await;
        assert_eq!(status, 200, "{body}");
        let namespaces = names(&body, "namespaces");
        assert!(
            namespaces.contains("bookinfo") && namespaces.contains("istio-system"),
            "{namespaces:?}"
        );
        let (_, body) = get(c, "/api/namespaces/bookinfo/apps").await;
        assert_eq!(
            names(&body, "applications"),
            BTreeSet::from(["details", "productpage", "ratings", "reviews"])
        );
        let (_, body) = get(c, "/api/namespaces/bookinfo/workloads").await;
        let workloads = names(&body, "workloads");
        assert!(
            workloads.is_superset(&BTreeSet::from([
                "reviews-v1",
                "reviews-v2",
                "reviews-v3",
                "productpage-v1"
            ])),
            "{workloads:?}"
        );
        let (_, reviews) = get(c, "/api/namespaces/bookinfo/apps/reviews").await;
        assert_eq!(
            reviews["related"],
            serde_json::json!(["reviews-v1", "reviews-v2", "reviews-v3"])
        );
        assert!(reviews["counts"]["requests"].as_u64().unwrap() > 0);
        let (_, ratings) = get(c, "/api/namespaces/bookinfo/services/ratings").await;
        assert_eq!(ratings["app"], "ratings");
        assert!(ratings["inventory"]["traces"].as_u64().unwrap() > 0);
        let (status, body) = get(c, "/api/namespaces/bookinfo/apps/nosuch").await;
        assert_eq!(status, 404);
        assert!(error(&body).contains("`nosuch` was not seen"));

        drop(s.store);
    }
}
