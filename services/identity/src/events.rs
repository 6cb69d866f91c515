//! Identity's events: what it publishes (through the outbox) and what it consumes.

use std::sync::Arc;

use async_trait::async_trait;
use hotline_kit::bus::{Event, EventHandler, Fanout, HandlerError, Subscription};
use hotline_proto::events::v1::{CustomerActivity, CustomerChanged, CustomerMerged};
use prost::Message;

use crate::service::IdentityService;

pub const CUSTOMER_CREATED: &str = "identity.customer.created";
pub const CUSTOMER_UPDATED: &str = "identity.customer.updated";
pub const CUSTOMER_MERGED: &str = "identity.customer.merged";
pub const CUSTOMER_ERASED: &str = "identity.customer.erased";

/// Any service's `<service>.activity.recorded` events feed customer timelines.
pub fn timeline_subscription() -> Subscription {
    Subscription {
        name: "identity.timeline".into(),
        bindings: vec!["*.activity.recorded".into()],
        fanout: Fanout::Shared,
    }
}

/// Identity's own customer changes reach every replica, so each drops the screen
/// pops it may have cached for the numbers involved (in-memory caches are per
/// replica; with Redis the second delete is a no-op).
pub fn invalidation_subscription() -> Subscription {
    Subscription {
        name: "identity.lookup-invalidation".into(),
        bindings: vec!["identity.customer.*".into()],
        fanout: Fanout::EveryReplica,
    }
}

pub struct TimelineConsumer(pub Arc<IdentityService>);

#[async_trait]
impl EventHandler for TimelineConsumer {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let activity = CustomerActivity::decode(event.data.as_slice())
            .map_err(|e| HandlerError(anyhow::anyhow!("undecodable {}: {e}", event.kind)))?;
        let recorded = self
            .0
            .record_activity(event.id, &event.source, activity)
            .await?;
        if !recorded {
            tracing::info!(event_id = %event.id, kind = %event.kind, "activity for an unknown or ambiguous customer; not recorded");
        }
        Ok(())
    }
}

pub struct InvalidationConsumer(pub Arc<IdentityService>);

#[async_trait]
impl EventHandler for InvalidationConsumer {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let numbers = if event.kind == CUSTOMER_MERGED {
            CustomerMerged::decode(event.data.as_slice()).map(|merged| merged.phones)
        } else {
            CustomerChanged::decode(event.data.as_slice())
                .map(|changed| [changed.phones, changed.previous_phones].concat())
        }
        .map_err(|e| HandlerError(anyhow::anyhow!("undecodable {}: {e}", event.kind)))?;
        self.0.invalidate_lookups(&numbers).await;
        Ok(())
    }
}
