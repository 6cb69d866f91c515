//! The connector to the operator's billing/operations system (BOSS). Lookups ask
//! it within a fixed budget; when it is slow or down they answer without billing
//! data and say so. The JSON contract is in docs/api/billing-connector.md.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use hotline_kit::cache::Cache;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::BillingConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingStatus {
    /// `account` holds the billing system's answer.
    Ok,
    /// The billing system knows no account for this customer.
    NotFound,
    /// The billing system was slow or down; the lookup went on without it.
    Unavailable,
    /// No billing system is configured.
    NotConfigured,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    pub product: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// What the billing system says about a customer's account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BillingAccount {
    pub account_number: String,
    /// e.g. active, suspended, in_arrears.
    pub status: String,
    pub balance_cents: i64,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

fn default_currency() -> String {
    "CNY".to_owned()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BillingInfo {
    pub status: BillingStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<BillingAccount>,
}

/// Who the billing system is asked about.
#[derive(Clone, Debug)]
pub struct BillingQuery {
    pub customer_id: String,
    pub phone: Option<String>,
    /// The customer's billing account number, when known (attribute `billing_account`).
    pub account: Option<String>,
}

#[async_trait]
pub trait BillingSystem: Send + Sync + 'static {
    async fn account(&self, query: &BillingQuery) -> anyhow::Result<Option<BillingAccount>>;
}

/// `GET {url}/v1/accounts?customer_id=..&phone=..&account=..` → 200 account JSON or 404.
pub struct HttpBillingSystem {
    url: String,
    client: reqwest::Client,
}

impl HttpBillingSystem {
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder().timeout(timeout).build()?,
        })
    }
}

#[async_trait]
impl BillingSystem for HttpBillingSystem {
    async fn account(&self, query: &BillingQuery) -> anyhow::Result<Option<BillingAccount>> {
        let mut params = vec![("customer_id", query.customer_id.as_str())];
        if let Some(phone) = &query.phone {
            params.push(("phone", phone));
        }
        if let Some(account) = &query.account {
            params.push(("account", account));
        }
        let mut request = self
            .client
            .get(format!("{}/v1/accounts", self.url))
            .query(&params);
        if let Some(traceparent) = hotline_kit::telemetry::current_traceparent() {
            request = request.header(hotline_kit::telemetry::TRACEPARENT, traceparent);
        }
        // Errors leave without the URL: its query holds the phone number.
        let response = request.send().await.map_err(reqwest::Error::without_url)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = response
            .error_for_status()
            .map_err(reqwest::Error::without_url)?;
        Ok(Some(
            response.json().await.map_err(reqwest::Error::without_url)?,
        ))
    }
}

/// Billing lookups with a time budget and a short cache.
#[derive(Clone)]
pub struct Billing {
    system: Option<Arc<dyn BillingSystem>>,
    cache: Cache,
    timeout: Duration,
    cache_ttl: Duration,
}

impl Billing {
    pub fn new(
        system: Option<Arc<dyn BillingSystem>>,
        cache: Cache,
        config: &BillingConfig,
    ) -> Self {
        Self {
            system,
            cache,
            timeout: config.timeout,
            cache_ttl: config.cache_ttl,
        }
    }

    pub fn from_config(config: &BillingConfig, cache: Cache) -> anyhow::Result<Self> {
        let system: Option<Arc<dyn BillingSystem>> = if config.url.is_empty() {
            None
        } else {
            Some(Arc::new(HttpBillingSystem::new(
                &config.url,
                config.timeout,
            )?))
        };
        Ok(Self::new(system, cache, config))
    }

    /// Drops the cached answer about a customer (after erasure).
    pub async fn forget(&self, customer_id: &str) {
        self.cache
            .delete(&[self.cache.key("billing", customer_id)])
            .await;
    }

    /// Whether a billing system is asked at all (otherwise every answer is `not_configured`).
    pub fn configured(&self) -> bool {
        self.system.is_some()
    }

    /// Never takes longer than the configured budget.
    pub async fn lookup(&self, query: &BillingQuery) -> BillingInfo {
        let Some(system) = &self.system else {
            return BillingInfo {
                status: BillingStatus::NotConfigured,
                account: None,
            };
        };
        let key = self.cache.key("billing", &query.customer_id);
        if let Some(cached) = self.cache.get_json::<BillingInfo>(&key).await {
            return cached;
        }
        let info = match tokio::time::timeout(self.timeout, system.account(query)).await {
            Ok(Ok(Some(account))) => BillingInfo {
                status: BillingStatus::Ok,
                account: Some(account),
            },
            Ok(Ok(None)) => BillingInfo {
                status: BillingStatus::NotFound,
                account: None,
            },
            Ok(Err(error)) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "billing system failed; answering without billing data"
                );
                return unavailable();
            }
            Err(_) => {
                tracing::warn!(
                    budget_ms = self.timeout.as_millis() as u64,
                    "billing system too slow; answering without billing data"
                );
                return unavailable();
            }
        };
        self.cache.set_json(&key, &info, self.cache_ttl).await;
        info
    }
}

fn unavailable() -> BillingInfo {
    BillingInfo {
        status: BillingStatus::Unavailable,
        account: None,
    }
}
