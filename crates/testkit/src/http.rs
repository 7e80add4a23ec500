//! One HTTP request sent and its body read, for the tests that only care about the body: a
//! request that cannot be sent or a body that cannot be read fails the test where it is made.

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
