//! How one service calls another: one trait per callee. The binary hands the
//! caller the callee itself when both run in one process, or the gRPC client
//! below when the callee runs elsewhere; the caller can't tell the difference.

use async_trait::async_trait;
use hotline_kit::{ApiError, auth::Principal, telemetry};
use tonic::{metadata::MetadataValue, transport::Channel};

use crate::identity::v1::{
    Customer, GetCustomerRequest, LookupByPhoneRequest, LookupByPhoneResponse,
    identity_service_client::IdentityServiceClient,
};

/// What other services need from identity.
#[async_trait]
pub trait IdentityApi: Send + Sync + 'static {
    /// Screen pop: ranked candidates for a calling number.
    async fn lookup_by_phone(
        &self,
        caller: &Principal,
        phone: &str,
    ) -> Result<LookupByPhoneResponse, ApiError>;

    /// One customer (a merged id resolves to the survivor).
    async fn get_customer(&self, caller: &Principal, id: &str) -> Result<Customer, ApiError>;
}

/// `IdentityApi` over gRPC, carrying the caller's token and trace context.
#[derive(Clone)]
pub struct IdentityGrpcClient {
    client: IdentityServiceClient<Channel>,
}

impl IdentityGrpcClient {
    /// Connects on first use, so processes start in any order.
    pub fn connect_lazy(endpoint: &str) -> Result<Self, ApiError> {
        let channel = Channel::from_shared(endpoint.to_owned())
            .map_err(|e| {
                ApiError::internal(anyhow::Error::msg(format!(
                    "identity endpoint {endpoint}: {e}"
                )))
            })?
            .connect_timeout(std::time::Duration::from_secs(2))
            .connect_lazy();
        Ok(Self {
            client: IdentityServiceClient::new(channel),
        })
    }
}

fn outgoing<T>(caller: &Principal, message: T) -> Result<tonic::Request<T>, ApiError> {
    let mut request = tonic::Request::new(message);
    let bearer = MetadataValue::try_from(format!("Bearer {}", caller.token))
        .map_err(|_| ApiError::unauthenticated("token is not valid metadata"))?;
    request.metadata_mut().insert("authorization", bearer);
    if let Some(traceparent) = telemetry::current_traceparent()
        && let Ok(value) = MetadataValue::try_from(traceparent)
    {
        request.metadata_mut().insert(telemetry::TRACEPARENT, value);
    }
    Ok(request)
}

#[async_trait]
impl IdentityApi for IdentityGrpcClient {
    async fn lookup_by_phone(
        &self,
        caller: &Principal,
        phone: &str,
    ) -> Result<LookupByPhoneResponse, ApiError> {
        let request = outgoing(
            caller,
            LookupByPhoneRequest {
                phone: phone.to_owned(),
            },
        )?;
        let response = self.client.clone().lookup_by_phone(request).await?;
        Ok(response.into_inner())
    }

    async fn get_customer(&self, caller: &Principal, id: &str) -> Result<Customer, ApiError> {
        let request = outgoing(caller, GetCustomerRequest { id: id.to_owned() })?;
        let response = self.client.clone().get_customer(request).await?;
        response.into_inner().customer.ok_or_else(|| {
            ApiError::internal(anyhow::Error::msg("identity answered without a customer"))
        })
    }
}
