//! A test's REST calls, made as one API client with its bearer token, and the
//! checks every answer gets.

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::TestApp;

impl TestApp {
    /// `method path` with `token`, and `body` as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("the server answers")
    }
}

/// Asserts the status and returns the JSON body.
pub async fn ok_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let body = response.text().await.expect("a body");
    assert_eq!(actual, status, "{body}");
    serde_json::from_str(&body).expect("a JSON body")
}

/// Asserts an RFC 9457 problem response and returns it.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(actual, status, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], status.as_u16());
    body
}
