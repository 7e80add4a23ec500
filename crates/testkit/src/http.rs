//! One HTTP request sent and its body read, for the tests that only care about the body: a
//! request that cannot be sent or a body that cannot be read fails the test where it is made;
//! the `error` text of a JSON error answer; and a stand-in server (an axum `Router`) served on a
//! loopback port.

/// The body of the answer to `request`, as text, whatever the status.
pub async fn text(request: reqwest::RequestBuilder) -> String {
    request
        .send()
        .await
        .expect("the request is sent")
        .text()
        .await
        .expect("the body is read")
}

/// The answer to `request`: its status, its `Content-Type` (empty when it has none) and its
/// body as text.
pub async fn parts(request: reqwest::RequestBuilder) -> (u16, String, String) {
    let response = request.send().await.expect("the request is sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.text().await.expect("the body is read");
    (status, content_type, body)
}

/// The body of the answer to `request`, as JSON, whatever the status.
pub async fn json(request: reqwest::RequestBuilder) -> serde_json::Value {
    request
        .send()
        .await
        .expect("the request is sent")
        .json()
        .await
        .expect("the body is JSON")
}

/// Serves `app` on a loopback port the kernel picks, for as long as the test's runtime lives:
/// the address to send requests to.
pub async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("the bound address");
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the test server runs");
    });
    address
}

/// A client that reports redirects instead of following them, as the tests of where a server
/// sends the browser need.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client")
}

/// The `error` text of a JSON error answer (Kiali's API and Prometheus' both carry the message
/// there); the test fails when there is none.
pub fn error_text(body: &serde_json::Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error text in {body}"))
}
