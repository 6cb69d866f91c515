//! `hotline.identity.v1.IdentityService` over the same use cases as REST, and the
//! in-process `IdentityApi` that other services get when identity runs beside them.

use std::sync::Arc;

use async_trait::async_trait;
use hotline_kit::{
    ApiError,
    auth::{Principal, principal_of},
    idempotency::IdempotencyKey,
};
use hotline_proto::{
    RestName,
    clients::IdentityApi,
    convert::{timestamp, wire},
    identity::v1::{self as pb, identity_service_server::IdentityServiceServer},
};
use prost::Message;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    billing::{BillingInfo, BillingStatus},
    domain::customer::{Address, Asset, NewCustomer, PhoneInput},
    service::{IdentityService, SearchQuery},
    views::{Candidate, CustomerView, LookupResult, TimelineEntryView},
};

pub struct IdentityGrpc(pub Arc<IdentityService>);

impl IdentityGrpc {
    pub fn server(service: Arc<IdentityService>) -> IdentityServiceServer<Self> {
        IdentityServiceServer::new(Self(service))
    }
}

fn customer_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::invalid_field("/id", "not a customer id"))
}

#[tonic::async_trait]
impl pb::identity_service_server::IdentityService for IdentityGrpc {
    async fn lookup_by_phone(
        &self,
        request: Request<pb::LookupByPhoneRequest>,
    ) -> Result<Response<pb::LookupByPhoneResponse>, Status> {
        let principal = principal_of(&request)?;
        let result = self.0.lookup(&principal, &request.get_ref().phone).await?;
        Ok(Response::new(lookup_response(result)))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        let principal = principal_of(&request)?;
        let view = self
            .0
            .get_customer(&principal, customer_id(&request.get_ref().id)?)
            .await?;
        Ok(Response::new(pb::GetCustomerResponse {
            customer: Some(customer(view)),
        }))
    }

    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> Result<Response<pb::CreateCustomerResponse>, Status> {
        let principal = principal_of(&request)?;
        let message = request.into_inner();
        let key = IdempotencyKey::from_message(
            &principal.subject,
            "CreateCustomer",
            &message.idempotency_key,
            || {
                let mut fingerprint = message.clone();
                fingerprint.idempotency_key.clear();
                fingerprint.encode_to_vec()
            },
        )?;
        let attributes = if message.attributes_json.is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_str(&message.attributes_json).map_err(|e| {
                ApiError::invalid_field("/attributes_json", format!("not a JSON object: {e}"))
            })?
        };
        let input = NewCustomer {
            name: message.name,
            phones: message
                .phones
                .into_iter()
                .enumerate()
                .map(|(index, phone)| {
                    Ok(PhoneInput {
                        label: label_in(index, phone.label)?,
                        number: phone.number,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            addresses: message.addresses.into_iter().map(address_in).collect(),
            id_number: Some(message.id_number).filter(|id| !id.is_empty()),
            email: Some(message.email).filter(|email| !email.is_empty()),
            tags: message.tags,
            vip_level: message.vip_level,
            attributes,
            assets: message
                .assets
                .into_iter()
                .map(|asset| Asset {
                    kind: asset.kind,
                    serial: asset.serial,
                    model: Some(asset.model).filter(|model| !model.is_empty()),
                })
                .collect(),
        };
        let view = self.0.create_customer(&principal, input, key).await?;
        Ok(Response::new(pb::CreateCustomerResponse {
            customer: Some(customer(view)),
        }))
    }

    async fn search_customers(
        &self,
        request: Request<pb::SearchCustomersRequest>,
    ) -> Result<Response<pb::SearchCustomersResponse>, Status> {
        let principal = principal_of(&request)?;
        let message = request.into_inner();
        let given = |value: String| Some(value).filter(|v| !v.is_empty());
        let page = self
            .0
            .search(
                &principal,
                SearchQuery {
                    name: given(message.name),
                    phone: given(message.phone),
                    address: given(message.address),
                    id_number: given(message.id_number),
                    limit: Some(u64::from(message.limit)).filter(|limit| *limit > 0),
                    cursor: given(message.cursor),
                },
            )
            .await?;
        Ok(Response::new(pb::SearchCustomersResponse {
            customers: page.items.into_iter().map(customer).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }
}

/// In one process, other services call identity directly, through the same contract.
#[async_trait]
impl IdentityApi for IdentityService {
    async fn lookup_by_phone(
        &self,
        caller: &Principal,
        phone: &str,
    ) -> Result<pb::LookupByPhoneResponse, ApiError> {
        Ok(lookup_response(self.lookup(caller, phone).await?))
    }

    async fn get_customer(&self, caller: &Principal, id: &str) -> Result<pb::Customer, ApiError> {
        Ok(customer(
            IdentityService::get_customer(self, caller, customer_id(id)?).await?,
        ))
    }
}

fn address_in(address: pb::Address) -> Address {
    Address {
        province: address.province,
        city: address.city,
        district: address.district,
        street: address.street,
        building: address.building,
        detail: address.detail,
    }
}

/// A phone's label as the domain spells it; unspecified is the domain's default.
fn label_in(index: usize, label: i32) -> Result<Option<String>, ApiError> {
    match pb::PhoneLabel::try_from(label) {
        Ok(pb::PhoneLabel::Unspecified) => Ok(None),
        Ok(label) => Ok(Some(label.rest_name())),
        Err(_) => Err(ApiError::invalid_field(
            format!("/phones/{index}/label"),
            "not a PhoneLabel",
        )),
    }
}

fn customer(view: CustomerView) -> pb::Customer {
    pb::Customer {
        id: view.id.to_string(),
        name: view.name,
        phones: view
            .phones
            .into_iter()
            .map(|phone| pb::Phone {
                label: wire::<pb::PhoneLabel>(&phone.label),
                number: phone.number,
            })
            .collect(),
        addresses: view
            .addresses
            .into_iter()
            .map(|a| pb::Address {
                province: a.province,
                city: a.city,
                district: a.district,
                street: a.street,
                building: a.building,
                detail: a.detail,
            })
            .collect(),
        id_number: view.id_number.unwrap_or_default(),
        email: view.email.unwrap_or_default(),
        tags: view.tags,
        vip_level: view.vip_level,
        attributes_json: serde_json::Value::Object(view.attributes).to_string(),
        assets: view
            .assets
            .into_iter()
            .map(|asset| pb::Asset {
                kind: asset.kind,
                serial: asset.serial,
                model: asset.model.unwrap_or_default(),
            })
            .collect(),
        version: view.version,
        created_at: Some(timestamp(view.created_at)),
        updated_at: Some(timestamp(view.updated_at)),
    }
}

fn timeline_entry(entry: TimelineEntryView) -> pb::TimelineEntry {
    pb::TimelineEntry {
        id: entry.id.to_string(),
        kind: entry.kind,
        reference: entry.reference,
        summary: entry.summary,
        occurred_at: Some(timestamp(entry.occurred_at)),
    }
}

fn billing(info: BillingInfo) -> pb::Billing {
    let status = match info.status {
        BillingStatus::Ok => pb::BillingStatus::Ok,
        BillingStatus::NotFound => pb::BillingStatus::NotFound,
        BillingStatus::Unavailable => pb::BillingStatus::Unavailable,
        BillingStatus::NotConfigured => pb::BillingStatus::NotConfigured,
    };
    let account = info.account;
    pb::Billing {
        status: status as i32,
        account_number: account
            .as_ref()
            .map(|a| a.account_number.clone())
            .unwrap_or_default(),
        account_status: account
            .as_ref()
            .map(|a| a.status.clone())
            .unwrap_or_default(),
        balance_cents: account.as_ref().map_or(0, |a| a.balance_cents),
        currency: account
            .as_ref()
            .map(|a| a.currency.clone())
            .unwrap_or_default(),
        subscriptions: account
            .map(|a| a.subscriptions.into_iter().map(|s| s.product).collect())
            .unwrap_or_default(),
    }
}

fn candidate(candidate: Candidate) -> pb::Candidate {
    pb::Candidate {
        customer: Some(customer(candidate.customer)),
        matched_on: wire::<pb::MatchedOn>(&candidate.matched_on),
        recent_history: candidate
            .recent_history
            .into_iter()
            .map(timeline_entry)
            .collect(),
        billing: Some(billing(candidate.billing)),
    }
}

fn lookup_response(result: LookupResult) -> pb::LookupByPhoneResponse {
    pb::LookupByPhoneResponse {
        phone: result.phone,
        candidates: result.candidates.into_iter().map(candidate).collect(),
    }
}
