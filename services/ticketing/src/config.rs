//! Ticketing's section of the configuration (`[ticketing]`).

use std::time::Duration;

use chrono_tz::Tz;
use hotline_kit::config::Validate;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TicketingConfig {
    /// IANA time zone of the center: the day in work-order numbers.
    pub time_zone: String,
    /// Region (ISO 3166) of phone numbers written without a country code.
    pub default_region: String,
    /// Numbers a replica reserves at once on PostgreSQL (gaps when unused).
    pub number_block: i64,
    /// A closed order may be reopened this long after it was closed.
    #[serde(with = "humantime_serde")]
    pub reopen_window: Duration,
    /// How long identity's answer for a customer is reused.
    #[serde(with = "humantime_serde")]
    pub customer_cache_ttl: Duration,
    /// An order for the same customer and kind of fault within this long
    /// after one was resolved is a repeat repair.
    #[serde(with = "humantime_serde")]
    pub repeat_window: Duration,
    /// A resolved order nobody closed or reopened closes itself after this.
    #[serde(with = "humantime_serde")]
    pub auto_close_after: Duration,
    /// How often the holder of the timers' lease looks for due deadlines.
    #[serde(with = "humantime_serde")]
    pub timer_poll: Duration,
    /// The background loops' leases: how long one outlives its holder's
    /// last renewal...
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// ...and how often it is renewed (and tried by the other replicas).
    #[serde(with = "humantime_serde")]
    pub lease_renew: Duration,
    /// Keep-alive comments on the escalation stream.
    #[serde(with = "humantime_serde")]
    pub stream_keep_alive: Duration,
    /// How long an assignee has to accept a dispatched order before it moves
    /// to the next candidate, unless its dispatch rule says otherwise.
    #[serde(with = "humantime_serde")]
    pub accept_timeout: Duration,
    /// Offers of one order in a round (declined or timed out) before the rules
    /// give up and leave it to the supervisors.
    pub max_auto_attempts: i32,
    /// Text messages to technicians (`[ticketing.sms]`).
    #[serde(default)]
    pub sms: SmsConfig,
    /// Webhooks to partner systems (`[ticketing.webhooks]`).
    #[serde(default)]
    pub webhooks: WebhookConfig,
}

/// How events reach partner systems' endpoints.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// How often the holder of the lease `ticketing.webhooks` looks for due deliveries.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    /// One attempt's limit, connecting and answering included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The waits before each retry after a failed attempt; past the last, the
    /// delivery has failed. Each wait is spread by up to `jitter` either way.
    pub retry_schedule: Vec<humantime_serde::Serde<Duration>>,
    /// Fraction (0 to 0.5) by which a retry's wait is spread.
    pub jitter: f64,
    /// A `Retry-After` longer than this is cut to it.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Endpoints delivered to at once; one slow endpoint holds up only itself.
    pub concurrency: usize,
    /// After a secret is rotated, deliveries carry a signature with the old
    /// one too, for this long.
    #[serde(with = "humantime_serde")]
    pub secret_overlap: Duration,
    /// `http://` endpoints accepted (development only; https otherwise).
    pub allow_http: bool,
    /// Networks endpoints may resolve to although they are loopback,
    /// private, link-local or otherwise not public (CIDRs; none by default).
    pub allow_networks: Vec<ipnet::IpNet>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self {
            poll: Duration::from_millis(200),
            timeout: Duration::from_secs(15),
            // Standard Webhooks' schedule: about 27 hours in all.
            retry_schedule: [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
                .map(|seconds| Duration::from_secs(seconds).into())
                .into(),
            jitter: 0.2,
            max_retry_after: minutes(24 * 60),
            concurrency: 32,
            secret_overlap: minutes(24 * 60),
            allow_http: false,
            allow_networks: Vec::new(),
        }
    }
}

/// Where SMS go and what they say.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// `sink`: messages are recorded, delivered at once and readable through
    /// `GET /api/v1/sms/messages`; technicians' replies are played with
    /// `POST /api/v1/sms/sink/inbound`. `http`: an HTTP gateway
    /// (`[ticketing.sms.http]`). `smpp`: an SMSC (`[ticketing.sms.smpp]`).
    pub provider: String,
    /// How often the holder of the lease `ticketing.sms` looks for queued messages.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    /// Parts a message may take; past them the order's description is shortened.
    pub max_parts: usize,
    pub templates: SmsTemplates,
    /// The HTTP gateway (`provider = "http"`).
    pub http: crate::sms::HttpSmsConfig,
    /// The SMSC (`provider = "smpp"`).
    pub smpp: crate::sms::SmppConfig,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            provider: "sink".into(),
            poll: Duration::from_millis(200),
            max_parts: 6,
            templates: SmsTemplates::default(),
            http: crate::sms::HttpSmsConfig::default(),
            smpp: crate::sms::SmppConfig::default(),
        }
    }
}

/// The texts, with `{placeholders}`: `{number}`, `{priority}`, `{category}`,
/// `{description}`, `{address}`, `{contact}`, `{phone}`; replies also
/// `{result}` and `{error}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsTemplates {
    /// To the technician an order is dispatched to.
    pub new_order: String,
    /// To the technician an order was taken from (re-dispatched, not accepted in time).
    pub withdrawn: String,
    /// To the technician of a cancelled order.
    pub cancelled: String,
    /// The answer to a command that took effect.
    pub reply_ok: String,
    /// The answer to one that didn't (from a registered technician only).
    pub reply_error: String,
}

impl Default for SmsTemplates {
    fn default() -> Self {
        Self {
            new_order: "新工单 {number}（{priority}）{category}：{description}。地址：{address}。联系人：{contact} {phone}。回复“接单 {number}”接单，“拒单 {number} 原因”拒单，修好后回复“完成 {number} 结果代码”。".into(),
            withdrawn: "工单 {number} 已转派他人，您无需处理。".into(),
            cancelled: "工单 {number} 已取消，您无需处理。".into(),
            reply_ok: "已收到：工单 {number} {result}。".into(),
            reply_error: "未能处理您的短信：{error}。请回复“接单 工单号”、“完成 工单号 结果代码”或“拒单 工单号 原因”。".into(),
        }
    }
}

impl SmsTemplates {
    fn all(&self) -> [(&'static str, &str); 5] {
        [
            ("new_order", &self.new_order),
            ("withdrawn", &self.withdrawn),
            ("cancelled", &self.cancelled),
            ("reply_ok", &self.reply_ok),
            ("reply_error", &self.reply_error),
        ]
    }
}

/// The settings in the types the service works with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub time_zone: Tz,
    pub region: phonenumber::country::Id,
    pub number_block: i64,
    pub reopen_window: chrono::Duration,
    pub customer_cache_ttl: Duration,
    pub repeat_window: chrono::Duration,
    pub auto_close_after: chrono::Duration,
    pub accept_timeout: chrono::Duration,
    pub max_auto_attempts: i32,
    pub sms: SmsConfig,
    pub webhooks: WebhookConfig,
}

impl TicketingConfig {
    pub fn settings(&self) -> Result<Settings, String> {
        Ok(Settings {
            time_zone: self.time_zone.parse().map_err(|_| {
                format!(
                    "ticketing.time_zone {:?} is not an IANA time zone",
                    self.time_zone
                )
            })?,
            region: self.default_region.parse().map_err(|_| {
                format!(
                    "ticketing.default_region {:?} is not an ISO 3166 region code like CN",
                    self.default_region
                )
            })?,
            number_block: self.number_block,
            reopen_window: chrono::Duration::from_std(self.reopen_window)
                .map_err(|_| "ticketing.reopen_window is too long".to_owned())?,
            customer_cache_ttl: self.customer_cache_ttl,
            repeat_window: chrono::Duration::from_std(self.repeat_window)
                .map_err(|_| "ticketing.repeat_window is too long".to_owned())?,
            auto_close_after: chrono::Duration::from_std(self.auto_close_after)
                .map_err(|_| "ticketing.auto_close_after is too long".to_owned())?,
            accept_timeout: chrono::Duration::from_std(self.accept_timeout)
                .map_err(|_| "ticketing.accept_timeout is too long".to_owned())?,
            max_auto_attempts: self.max_auto_attempts,
            sms: self.sms.clone(),
            webhooks: self.webhooks.clone(),
        })
    }
}

impl Validate for TicketingConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(problem) = self.settings() {
            problems.push(problem);
        }
        if !(1..=10_000).contains(&self.number_block) {
            problems.push("ticketing.number_block must be between 1 and 10000".into());
        }
        if self.auto_close_after < Duration::from_secs(60)
            || self.auto_close_after > Duration::from_secs(365 * 86_400)
        {
            problems.push("ticketing.auto_close_after must be between 1m and 365d".into());
        }
        if self.timer_poll < Duration::from_millis(50) || self.timer_poll > Duration::from_secs(60)
        {
            problems.push("ticketing.timer_poll must be between 50ms and 60s".into());
        }
        if self.lease_renew.is_zero() || self.lease_ttl < self.lease_renew * 2 {
            problems
                .push("ticketing.lease_ttl must be at least twice ticketing.lease_renew".into());
        }
        if self.stream_keep_alive < Duration::from_secs(1) {
            problems.push("ticketing.stream_keep_alive must be at least 1s".into());
        }
        if self.accept_timeout < Duration::from_secs(60)
            || self.accept_timeout > Duration::from_secs(7 * 86_400)
        {
            problems.push("ticketing.accept_timeout must be between 1m and 7d".into());
        }
        if !(1..=100).contains(&self.max_auto_attempts) {
            problems.push("ticketing.max_auto_attempts must be between 1 and 100".into());
        }
        match self.sms.provider.as_str() {
            "sink" => {}
            "http" => problems.extend(self.sms.http.problems()),
            "smpp" => problems.extend(self.sms.smpp.problems()),
            other => problems.push(format!(
                "ticketing.sms.provider {other:?}: \"sink\", \"smpp\" or \"http\""
            )),
        }
        if !(1..=10).contains(&self.sms.max_parts) {
            problems.push("ticketing.sms.max_parts must be between 1 and 10".into());
        }
        if self.sms.poll < Duration::from_millis(20) || self.sms.poll > Duration::from_secs(60) {
            problems.push("ticketing.sms.poll must be between 20ms and 60s".into());
        }
        for (name, text) in self.sms.templates.all() {
            if let Err(unknown) = crate::domain::template::check(text) {
                problems.push(format!(
                    "ticketing.sms.templates.{name} has an unknown placeholder {{{unknown}}}"
                ));
            }
        }
        problems.extend(self.webhooks.problems());
        if self.customer_cache_ttl > Duration::from_secs(3600) {
            problems.push("ticketing.customer_cache_ttl must be at most 1h".into());
        }
        problems
    }
}

impl WebhookConfig {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.poll < Duration::from_millis(20) || self.poll > Duration::from_secs(60) {
            problems.push("ticketing.webhooks.poll must be between 20ms and 60s".into());
        }
        if self.timeout < Duration::from_secs(1) || self.timeout > Duration::from_secs(120) {
            problems.push("ticketing.webhooks.timeout must be between 1s and 2m".into());
        }
        if self.retry_schedule.len() > 30
            || self
                .retry_schedule
                .iter()
                .any(|wait| **wait > Duration::from_secs(7 * 86_400))
        {
            problems.push(
                "ticketing.webhooks.retry_schedule takes at most 30 waits of at most 7d".into(),
            );
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            problems.push("ticketing.webhooks.jitter must be between 0 and 0.5".into());
        }
        if !(1..=1000).contains(&self.concurrency) {
            problems.push("ticketing.webhooks.concurrency must be between 1 and 1000".into());
        }
        if self.secret_overlap > Duration::from_secs(30 * 86_400) {
            problems.push("ticketing.webhooks.secret_overlap must be at most 30d".into());
        }
        problems
    }
}
