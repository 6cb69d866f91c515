//! Webhooks to partner systems, as Standard Webhooks describes them: a JSON
//! body `{type, timestamp, data}` POSTed with `webhook-id`,
//! `webhook-timestamp` and `webhook-signature`; a 2xx is delivered, `410
//! Gone` disables the endpoint, anything else is retried on the configured
//! schedule (a `Retry-After` honoured).

pub mod guard;
pub mod signature;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{StatusCode, header};

pub use guard::{Guard, Refusal};

/// Bytes of an answer kept in the delivery log.
const EXCERPT: usize = 512;

/// Sends deliveries: one client (its connections reused per endpoint), no
/// redirects followed, no proxy, every address through the [`Guard`].
pub struct Sender {
    client: reqwest::Client,
    guard: Guard,
}

/// One request to send.
pub struct Request<'a> {
    pub url: &'a str,
    /// The `webhook-id`.
    pub id: &'a str,
    /// The secrets to sign with: the current one first.
    pub secrets: &'a [&'a str],
    pub body: &'a str,
}

/// What an attempt came to.
#[derive(Debug)]
pub struct Attempt {
    pub verdict: Verdict,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub excerpt: Option<String>,
    pub took: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// The endpoint answered 410: it is not to be called again.
    Gone,
    /// Try again later, no sooner than the endpoint's `Retry-After` if it gave one.
    Retry(Option<Duration>),
}

impl Sender {
    pub fn new(guard: Guard, timeout: Duration) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("Hotline-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(guard.resolver())
            .build()?;
        Ok(Self { client, guard })
    }

    pub async fn send(&self, request: &Request<'_>, now: DateTime<Utc>) -> Attempt {
        let started = Instant::now();
        let failed = |error: String| Attempt {
            verdict: Verdict::Retry(None),
            status: None,
            error: Some(error),
            excerpt: None,
            took: started.elapsed(),
        };
        // An address written in the URL never reaches the resolver.
        if let Err(refusal) = self.guard.parse(request.url) {
            return failed(format!("refused: the URL {refusal}"));
        }
        let timestamp = now.timestamp();
        let signature = signature::header(request.secrets, request.id, timestamp, request.body);
        let sent = self
            .client
            .post(request.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", request.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(request.body.to_owned())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return failed(describe(&error)),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers(), now);
        let excerpt = response.text().await.ok().map(|body| cut(&body, EXCERPT));
        let verdict = if status.is_success() {
            Verdict::Delivered
        } else if status == StatusCode::GONE {
            Verdict::Gone
        } else {
            Verdict::Retry(retry_after)
        };
        Attempt {
            error: (!status.is_success()).then(|| format!("answered {status}")),
            verdict,
            status: Some(status.as_u16()),
            excerpt: excerpt.filter(|text| !text.is_empty()),
            took: started.elapsed(),
        }
    }
}

/// The chain of causes: reqwest's own message hides the refusal or timeout.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    cut(&text, EXCERPT)
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - now).to_std().ok()
}

fn cut(text: &str, bytes: usize) -> String {
    if text.len() <= bytes {
        return text.to_owned();
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_both_ways() {
        let now: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
        let mut headers = header::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(
            header::RETRY_AFTER,
            "Tue, 01 Dec 2026 10:05:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(300)));
        headers.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn cuts_on_a_character_boundary() {
        assert_eq!(cut("工单已收到", 7), "工单");
        assert_eq!(cut("ok", 7), "ok");
    }
}
