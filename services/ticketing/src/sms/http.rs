//! An HTTP SMS API (the common gateways' "send" call): one request per
//! message, JSON or a form, its fields and headers from configuration; the
//! gateway's answer decides sent, retried or failed, and its delivery reports
//! come back to `POST /api/v1/sms/http/status`.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::{OutboundSms, SmsProvider, SubmitError, Submitted};

/// `[ticketing.sms.http]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSmsConfig {
    /// The gateway's send URL.
    pub url: String,
    /// `json` or `form`.
    pub format: String,
    /// The request's fields, with `{id}` (the message's stable id, for the
    /// gateway's reference), `{to}` (E.164), `{sender}` and `{text}`.
    pub fields: BTreeMap<String, String>,
    /// Extra headers, e.g. `Authorization` (set it through the environment).
    pub headers: BTreeMap<String, String>,
    /// The source address or sender id `{sender}` stands for.
    #[serde(deserialize_with = "hotline_kit::config::text")]
    pub sender: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Where the gateway's own message id is in its JSON answer (a JSON
    /// pointer); empty: not recorded.
    pub message_id_pointer: String,
    /// The token delivery reports must carry (`?token=`); empty: reports refused.
    pub callback_token: String,
    /// The report's field naming the message: the `{id}` it was sent with.
    pub callback_id_field: String,
    pub callback_status_field: String,
    /// Report statuses meaning delivered, and meaning it never will be.
    pub delivered_values: Vec<String>,
    pub failed_values: Vec<String>,
}

impl Default for HttpSmsConfig {
    fn default() -> Self {
        let strings = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect();
        Self {
            url: String::new(),
            format: "json".into(),
            fields: [
                ("to", "{to}"),
                ("from", "{sender}"),
                ("text", "{text}"),
                ("reference", "{id}"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            headers: BTreeMap::new(),
            sender: String::new(),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            message_id_pointer: "/message_id".into(),
            callback_token: String::new(),
            callback_id_field: "reference".into(),
            callback_status_field: "status".into(),
            delivered_values: strings(&["delivered", "DELIVRD"]),
            failed_values: strings(&["failed", "undelivered", "UNDELIV", "REJECTD", "EXPIRED"]),
        }
    }
}

impl HttpSmsConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !matches!(
            url::Url::parse(&self.url)
                .map(|u| u.scheme().to_owned())
                .as_deref(),
            Ok("https" | "http")
        ) {
            problems.push("ticketing.sms.http.url must be an http(s) URL".into());
        }
        if !matches!(self.format.as_str(), "json" | "form") {
            problems.push("ticketing.sms.http.format must be json or form".into());
        }
        if !self.fields.values().any(|v| v.contains("{text}")) {
            problems.push("ticketing.sms.http.fields must carry {text}".into());
        }
        if self.timeout < Duration::from_secs(1) || self.timeout > Duration::from_secs(120) {
            problems.push("ticketing.sms.http.timeout must be between 1s and 2m".into());
        }
        if !(1..=256).contains(&self.concurrency) {
            problems.push("ticketing.sms.http.concurrency must be between 1 and 256".into());
        }
        problems
    }

    /// What a delivery report's status means: `Some(true)` delivered,
    /// `Some(false)` failed, `None` still on its way.
    pub fn outcome(&self, status: &str) -> Option<bool> {
        if self
            .delivered_values
            .iter()
            .any(|v| v.eq_ignore_ascii_case(status))
        {
            Some(true)
        } else if self
            .failed_values
            .iter()
            .any(|v| v.eq_ignore_ascii_case(status))
        {
            Some(false)
        } else {
            None
        }
    }
}

pub struct HttpProvider {
    client: reqwest::Client,
    config: HttpSmsConfig,
}

impl HttpProvider {
    pub fn new(config: HttpSmsConfig) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, config })
    }

    fn fields(&self, message: &OutboundSms) -> BTreeMap<String, String> {
        let id = message.id.to_string();
        self.config
            .fields
            .iter()
            .map(|(name, value)| {
                // {text} last: nothing in the text is taken for a placeholder.
                let value = value
                    .replace("{id}", &id)
                    .replace("{to}", &message.to)
                    .replace("{sender}", &self.config.sender)
                    .replace("{text}", &message.text);
                (name.clone(), value)
            })
            .collect()
    }
}

#[async_trait]
impl SmsProvider for HttpProvider {
    fn name(&self) -> &'static str {
        "http"
    }

    fn window(&self) -> usize {
        self.config.concurrency
    }

    async fn submit(&self, message: &OutboundSms) -> Result<Submitted, SubmitError> {
        let fields = self.fields(message);
        let mut request = self.client.post(&self.config.url);
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        request = if self.config.format == "form" {
            request.form(&fields)
        } else {
            request.json(&fields)
        };
        let response = request
            .send()
            .await
            .map_err(|error| SubmitError::Transient(format!("the gateway: {error}")))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            let gateway_id = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|json| {
                    json.pointer(&self.config.message_id_pointer)
                        .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_owned))
                });
            return Ok(Submitted {
                part_ids: gateway_id.into_iter().collect(),
                delivered: false,
            });
        }
        let excerpt: String = body.chars().take(200).collect();
        let error = format!("the gateway answered {status}: {excerpt}");
        if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            Err(SubmitError::Transient(error))
        } else {
            Err(SubmitError::Permanent(error))
        }
    }
}
