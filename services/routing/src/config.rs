//! Routing's section of the configuration (`[routing]`).

use std::time::Duration;

use hotline_kit::{calendar, config::Validate};
use serde::{Deserialize, Serialize};

use crate::domain::router::Settings;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// How long an offer rings when its queue sets nothing.
    #[serde(with = "humantime_serde")]
    pub offer_timeout: Duration,
    /// The activity an agent is put in when an offer goes unanswered.
    pub no_answer_activity: String,
    /// Waiting this long is worth one priority level.
    #[serde(with = "humantime_serde")]
    pub priority_aging: Duration,
    /// A caller who hangs up and calls again within this keeps their place.
    #[serde(with = "humantime_serde")]
    pub resume_window: Duration,
    /// When to call again after a callback or outbound call found nobody.
    pub callback_retry: Vec<humantime_serde::Serde<Duration>>,
    /// IANA time zone of the center: its day for "today", and business hours'.
    pub time_zone: String,
    /// Recent tasks per queue that estimated waits average over.
    pub handle_time_samples: usize,
    /// How long identity's screen pop may delay an arriving call.
    #[serde(with = "humantime_serde")]
    pub screen_pop_timeout: Duration,
    /// The router lease: how long it outlives its holder's last renewal...
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// ...and how often it is renewed (and tried by the other replicas).
    #[serde(with = "humantime_serde")]
    pub lease_renew: Duration,
    /// How the other replicas reach this one's gRPC server (http://10.1.2.3:9090).
    /// Empty: the gRPC address it listens on (127.0.0.1 for an unspecified one).
    pub advertise_grpc: String,
    /// How long a replica keeps trying to reach the router (during a
    /// takeover) before it answers 503.
    #[serde(with = "humantime_serde")]
    pub forward_timeout: Duration,
    /// Commands the router applies per database transaction at most.
    pub batch_max: usize,
    /// Keep-alive comments on Server-Sent Events streams.
    #[serde(with = "humantime_serde")]
    pub stream_keep_alive: Duration,
}

impl RoutingConfig {
    pub fn settings(&self) -> Result<Settings, String> {
        Ok(Settings {
            offer_timeout: self.offer_timeout,
            no_answer_activity: self.no_answer_activity.clone(),
            priority_aging: self.priority_aging,
            resume_window: self.resume_window,
            callback_retry: self.callback_retry.iter().map(|delay| **delay).collect(),
            time_zone: calendar::time_zone(&self.time_zone)?,
            handle_time_samples: self.handle_time_samples,
        })
    }
}

impl Validate for RoutingConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(problem) = calendar::time_zone(&self.time_zone) {
            problems.push(format!("routing.time_zone: {problem}"));
        }
        if self.offer_timeout < Duration::from_secs(1)
            || self.offer_timeout > Duration::from_secs(600)
        {
            problems.push("routing.offer_timeout must be between 1s and 10m".into());
        }
        if self.no_answer_activity.is_empty() || self.no_answer_activity == "ready" {
            problems.push(
                "routing.no_answer_activity must name an unavailable activity such as not_ready"
                    .into(),
            );
        }
        if self.priority_aging < Duration::from_secs(1) {
            problems.push("routing.priority_aging must be at least 1s".into());
        }
        if self.callback_retry.len() > 10 {
            problems.push("routing.callback_retry takes at most 10 delays".into());
        }
        if self.handle_time_samples == 0 || self.handle_time_samples > 10_000 {
            problems.push("routing.handle_time_samples must be between 1 and 10000".into());
        }
        if self.lease_renew.is_zero() || self.lease_ttl < self.lease_renew * 2 {
            problems.push("routing.lease_ttl must be at least twice routing.lease_renew".into());
        }
        if !self.advertise_grpc.is_empty() && !self.advertise_grpc.starts_with("http") {
            problems.push("routing.advertise_grpc must be an http:// URL or empty".into());
        }
        if self.batch_max == 0 {
            problems.push("routing.batch_max must be at least 1".into());
        }
        if self.stream_keep_alive < Duration::from_secs(1) {
            problems.push("routing.stream_keep_alive must be at least 1s".into());
        }
        problems
    }
}
