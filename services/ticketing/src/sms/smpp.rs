//! SMPP 3.4 to an operator's SMSC (rusmppc). The holder of the lease
//! `ticketing.sms` holds one transceiver bind; up to `window` `submit_sm` are
//! outstanding at once (the client matches responses by sequence number)
//! under a `throughput` limit per second. Delivery receipts and technicians'
//! texts arrive as `deliver_sm` and go to the service as [`Report`]s, each
//! answered with `deliver_sm_resp` once it is recorded.

use std::{num::NonZeroU32, str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::{StreamExt, stream::BoxStream};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hotline_kit::{config::Secret, lease::Leadership};
use rusmpp::{
    CommandId, CommandStatus, Pdu,
    extra::encoding::{gsm7bit::Gsm7BitUnpacked, ucs2::Ucs2},
    pdus::{BindTransceiver, DeliverSm, DeliverSmResp, SubmitSm},
    tlvs::{MessageSubmissionRequestTlvValue, TlvTag, TlvValue},
    types::{AnyOctetString, COctetString, OctetString},
    values::{
        DataCoding, EsmClass, InterfaceVersion, MCDeliveryReceipt, MessageState, MessageType, Npi,
        RegisteredDelivery, Ton,
    },
};
use rusmppc::{Client, ConnectionBuilder, Event, error::Error};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{OutboundSms, Receipt, SmsProvider, SubmitError, Submitted};
use crate::domain::sms_text::{self, Encoding};

/// `[ticketing.sms.smpp]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmppConfig {
    /// `smpp://host:port`, or `smpps://host:port` for TLS.
    pub address: String,
    #[serde(deserialize_with = "hotline_kit::config::text")]
    pub system_id: String,
    pub password: Secret,
    #[serde(deserialize_with = "hotline_kit::config::text")]
    pub system_type: String,
    /// The sender technicians see, with its type of number and numbering plan.
    #[serde(deserialize_with = "hotline_kit::config::text")]
    pub source_addr: String,
    pub source_ton: u8,
    pub source_npi: u8,
    /// `submit_sm` outstanding at once.
    pub window: usize,
    /// Parts submitted per second at most (the SMSC's contracted rate); 0: no limit.
    pub throughput: u32,
    #[serde(with = "humantime_serde")]
    pub enquire_link: Duration,
    /// A `submit_sm` unanswered this long is retried later.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// A lost or refused bind is retried after `reconnect_min`, doubling up to `reconnect_max`.
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// Ask the SMSC for delivery receipts.
    pub receipts: bool,
    /// A vendor TLV carrying the text's stable id on every part, so a
    /// receiver can drop a resend; 0: not sent.
    pub id_tlv: u16,
}

impl Default for SmppConfig {
    fn default() -> Self {
        Self {
            address: String::new(),
            system_id: String::new(),
            password: Secret::default(),
            system_type: String::new(),
            source_addr: String::new(),
            source_ton: 5,
            source_npi: 0,
            window: 64,
            throughput: 0,
            enquire_link: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            receipts: true,
            id_tlv: 0x1400,
        }
    }
}

impl SmppConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.address.starts_with("smpp://") || self.address.starts_with("smpps://")) {
            problems.push("ticketing.sms.smpp.address must be smpp://host:port or smpps://".into());
        }
        let lengths = [
            ("system_id", &self.system_id, 1, 15),
            ("password", &self.password.expose().to_owned(), 0, 8),
            ("system_type", &self.system_type, 0, 12),
            ("source_addr", &self.source_addr, 1, 20),
        ];
        for (name, value, min, max) in lengths {
            if !(min..=max).contains(&value.len()) || !value.is_ascii() {
                problems.push(format!(
                    "ticketing.sms.smpp.{name} must be {min} to {max} ASCII characters"
                ));
            }
        }
        if !(1..=1024).contains(&self.window) {
            problems.push("ticketing.sms.smpp.window must be between 1 and 1024".into());
        }
        if self.response_timeout < Duration::from_secs(1) {
            problems.push("ticketing.sms.smpp.response_timeout must be at least 1s".into());
        }
        if self.enquire_link < Duration::from_secs(1) {
            problems.push("ticketing.sms.smpp.enquire_link must be at least 1s".into());
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            problems.push(
                "ticketing.sms.smpp.reconnect_min must be above 0 and at most reconnect_max".into(),
            );
        }
        problems
    }
}

/// What an SMSC told us unasked.
#[derive(Debug)]
pub enum Report {
    Receipt {
        receipt: Receipt,
        ack: Ack,
    },
    /// A technician's text.
    Text {
        from: String,
        text: String,
        ack: Ack,
    },
}

/// The `deliver_sm_resp` a report is owed: sent once the report is
/// recorded, so an SMSC resends what a crash lost.
#[derive(Debug)]
pub struct Ack {
    client: Client,
    sequence: u32,
}

impl Ack {
    pub async fn send(self) {
        if let Err(error) = self
            .client
            .deliver_sm_resp(self.sequence, DeliverSmResp::default())
            .await
        {
            tracing::debug!(%error, "deliver_sm_resp not sent: the link is gone");
        }
    }
}

pub struct SmppProvider {
    config: SmppConfig,
    window: Arc<Semaphore>,
    limiter: Option<DefaultDirectRateLimiter>,
    /// The bound session, while there is one.
    bound: watch::Sender<Option<Client>>,
}

impl SmppProvider {
    pub fn new(config: SmppConfig) -> Self {
        let limiter = NonZeroU32::new(config.throughput)
            .map(|rate| RateLimiter::direct(Quota::per_second(rate)));
        Self {
            window: Arc::new(Semaphore::new(config.window)),
            limiter,
            bound: watch::Sender::new(None),
            config,
        }
    }

    /// Holds a bind while `leadership` says this replica sends the texts:
    /// binds, rebinds with backoff when the link is lost or refused, and
    /// unbinds when the lease or the process ends.
    pub async fn run(
        self: Arc<Self>,
        leadership: Arc<Leadership>,
        reports: mpsc::Sender<Report>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut held = leadership.watch();
        let mut delay = self.config.reconnect_min;
        loop {
            if held.borrow_and_update().is_none() {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    _ = held.changed() => continue,
                }
            }
            let (client, events) = match self.bind().await {
                Ok(bound) => bound,
                Err(error) => {
                    tracing::warn!(%error, address = %self.config.address, retry_in = ?delay, "SMPP bind failed");
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(self.config.reconnect_max);
                    continue;
                }
            };
            tracing::info!(address = %self.config.address, system_id = %self.config.system_id, "SMPP bound");
            delay = self.config.reconnect_min;
            self.bound.send_replace(Some(client.clone()));
            let end = serve(&client, events, &mut held, &reports, &shutdown).await;
            self.bound.send_replace(None);
            match end {
                // After a pause: an SMSC that accepts binds and drops them
                // at once isn't hammered.
                End::Lost => {
                    tracing::warn!(retry_in = ?delay, "the SMPP link was lost; rebinding");
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                End::Released | End::Shutdown => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), client.unbind()).await;
                    let _ = client.close().await;
                    if matches!(end, End::Shutdown) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The client and its event stream, which lives as long as the link.
    async fn bind(&self) -> Result<(Client, BoxStream<'static, Event>), Error> {
        let config = &self.config;
        let (client, events, connection) = ConnectionBuilder::new()
            .enquire_link_interval(config.enquire_link)
            .enquire_link_response_timeout(config.response_timeout)
            .response_timeout(config.response_timeout)
            // SMPP 3.4, which the crate (written for 5.0) otherwise refuses.
            .disable_interface_version_check()
            .no_spawn()
            .connect(config.address.as_str())
            .await?;
        tokio::spawn(drive(connection, self.config.window, self.window.clone()));
        let bind = BindTransceiver::builder()
            .system_id(c_octets(&config.system_id))
            .password(c_octets(config.password.expose()))
            .system_type(c_octets(&config.system_type))
            .interface_version(InterfaceVersion::Smpp3_4)
            .build();
        if let Err(error) = client.bind_transceiver(bind).await {
            let _ = client.close().await;
            return Err(error);
        }
        Ok((client, events.boxed()))
    }

    /// The `submit_sm` of each part, with the concatenation header when
    /// there are several.
    fn pdus(&self, message: &OutboundSms) -> Result<Vec<SubmitSm>, SubmitError> {
        let config = &self.config;
        let coding = match message.encoding {
            Encoding::Gsm7 => DataCoding::McSpecific,
            Encoding::Ucs2 => DataCoding::Ucs2,
        };
        let total = u8::try_from(message.parts.len())
            .map_err(|_| SubmitError::Permanent("more than 255 parts".into()))?;
        // The same reference on a resend, so the phone joins the same parts.
        let reference = message.id.as_bytes()[15];
        let receipt = if config.receipts {
            MCDeliveryReceipt::McDeliveryReceiptRequestedWhereFinalDeliveryOutcomeIsSuccessOrFailure
        } else {
            MCDeliveryReceipt::NoMcDeliveryReceiptRequested
        };
        let destination = COctetString::from_str(message.to.trim_start_matches('+'))
            .map_err(|error| SubmitError::Permanent(format!("destination: {error}")))?;
        message
            .parts
            .iter()
            .zip(1u8..)
            .map(|(part, sequence)| {
                let encoded = match message.encoding {
                    Encoding::Gsm7 => Gsm7BitUnpacked::new()
                        .encode_to_vec(part)
                        .map_err(|error| error.to_string()),
                    Encoding::Ucs2 => Ucs2::new()
                        .encode_to_vec(part)
                        .map_err(|error| error.to_string()),
                }
                .map_err(|error| SubmitError::Permanent(format!("encoding: {error}")))?;
                let mut esm_class = EsmClass::default();
                let mut user_data = Vec::with_capacity(encoded.len() + 6);
                if total > 1 {
                    esm_class = esm_class.with_udhi_indicator();
                    // IEI 0: concatenation with an 8-bit reference.
                    user_data.extend_from_slice(&[5, 0, 3, reference, total, sequence]);
                }
                user_data.extend_from_slice(&encoded);
                let short_message = OctetString::from_slice(&user_data)
                    .map_err(|error| SubmitError::Permanent(format!("part too long: {error}")))?;
                let mut pdu = SubmitSm::builder()
                    .source_addr_ton(Ton::from(config.source_ton))
                    .source_addr_npi(Npi::from(config.source_npi))
                    .source_addr(c_octets(&config.source_addr))
                    .dest_addr_ton(Ton::International)
                    .dest_addr_npi(Npi::Isdn)
                    .destination_addr(destination.clone())
                    .esm_class(esm_class)
                    .registered_delivery(RegisteredDelivery::new(
                        receipt,
                        Default::default(),
                        Default::default(),
                        0,
                    ))
                    .data_coding(coding)
                    .short_message(short_message)
                    .build();
                if config.id_tlv != 0 {
                    pdu.push_tlv(MessageSubmissionRequestTlvValue::Other {
                        tag: TlvTag::Other(config.id_tlv),
                        value: AnyOctetString::from_vec(message.id.to_string().into_bytes()),
                    });
                }
                Ok(pdu)
            })
            .collect()
    }
}

#[async_trait]
impl SmsProvider for SmppProvider {
    fn name(&self) -> &'static str {
        "smpp"
    }

    fn window(&self) -> usize {
        self.config.window
    }

    async fn submit(&self, message: &OutboundSms) -> Result<Submitted, SubmitError> {
        let pdus = self.pdus(message)?;
        let mut bound = self.bound.subscribe();
        let waited = tokio::time::timeout(
            self.config.response_timeout,
            bound.wait_for(Option::is_some),
        )
        .await;
        let Some(client) = waited.ok().and_then(|seen| seen.ok()?.clone()) else {
            return Err(SubmitError::Transient("not bound to the SMSC".into()));
        };
        let mut part_ids = Vec::with_capacity(pdus.len());
        for pdu in pdus {
            let _slot = self
                .window
                .acquire()
                .await
                .map_err(|_| SubmitError::Transient("closing".into()))?;
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            let answer = client.submit_sm(pdu).await.map_err(classify)?;
            part_ids.push(answer.message_id().to_string());
        }
        Ok(Submitted {
            part_ids,
            delivered: false,
        })
    }
}

/// Runs rusmppc's connection. Its poll stops after a few commands and, when
/// nothing else wakes it, leaves the rest queued until its next timer: with a
/// full window, texts went out in bursts every `enquire_link` (30 s). So while
/// submits are outstanding it is polled again at once (after yielding to
/// every other task), and every millisecond otherwise.
async fn drive(connection: impl Future<Output = ()>, window: usize, busy: Arc<Semaphore>) {
    let mut connection = std::pin::pin!(connection);
    let mut nudge = tokio::time::interval(Duration::from_millis(1));
    nudge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let outstanding = busy.available_permits() < window;
        tokio::select! {
            biased;
            () = &mut connection => return,
            () = tokio::task::yield_now(), if outstanding => {}
            _ = nudge.tick() => {}
        }
    }
}

enum End {
    /// The link broke: bind again.
    Lost,
    /// Another replica holds the lease now.
    Released,
    Shutdown,
}

async fn serve(
    client: &Client,
    mut events: impl futures::Stream<Item = Event> + Unpin,
    held: &mut watch::Receiver<Option<hotline_kit::lease::Grant>>,
    reports: &mpsc::Sender<Report>,
    shutdown: &CancellationToken,
) -> End {
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return End::Shutdown,
            changed = held.changed() => {
                if changed.is_err() || held.borrow_and_update().is_none() {
                    return End::Released;
                }
                continue;
            }
            event = events.next() => event,
        };
        match event {
            None => return End::Lost,
            Some(Event::Error(error)) => {
                tracing::warn!(%error, "SMPP link");
                if client.is_closed() {
                    return End::Lost;
                }
            }
            Some(Event::Incoming(command)) => {
                let sequence = command.sequence_number();
                if let Some(Pdu::DeliverSm(deliver)) = command.pdu() {
                    let ack = Ack {
                        client: client.clone(),
                        sequence,
                    };
                    if let Some(report) = report(deliver, ack)
                        && reports.send(report).await.is_err()
                    {
                        return End::Shutdown;
                    }
                } else if command.id() == CommandId::Unbind {
                    let _ = client.unbind_resp(sequence).await;
                    return End::Lost;
                } else {
                    tracing::debug!(command = ?command.id(), "SMPP command ignored");
                }
            }
        }
    }
}

/// What a `deliver_sm` says; `None` for a receipt that isn't final (it is
/// acknowledged at once).
fn report(deliver: &DeliverSm, ack: Ack) -> Option<Report> {
    let body = deliver.short_message().as_ref();
    if deliver.esm_class.message_type == MessageType::ShortMessageContainsMCDeliveryReceipt {
        let text = String::from_utf8_lossy(body);
        let mut part_id = field(&text, "id:").map(str::to_owned);
        let mut state = field(&text, "stat:").map(str::to_ascii_uppercase);
        for tlv in deliver.tlvs() {
            match tlv.value() {
                Some(TlvValue::ReceiptedMessageId(id)) => part_id = Some(id.to_string()),
                Some(TlvValue::MessageState(value)) => state = Some(state_name(*value).into()),
                _ => {}
            }
        }
        let (Some(part_id), Some(state)) = (part_id, state) else {
            tracing::warn!(%text, "a delivery receipt without an id or a state");
            tokio::spawn(ack.send());
            return None;
        };
        let delivered = match state.as_str() {
            "DELIVRD" => true,
            "UNDELIV" | "EXPIRED" | "REJECTD" | "DELETED" => false,
            _ => {
                tokio::spawn(ack.send());
                return None;
            }
        };
        return Some(Report::Receipt {
            receipt: Receipt {
                part_id,
                delivered,
                state,
            },
            ack,
        });
    }
    let text = if deliver.data_coding == DataCoding::Ucs2 {
        sms_text::decode_ucs2(body)
    } else if deliver.data_coding == DataCoding::Latin1 {
        body.iter().map(|&b| char::from(b)).collect()
    } else {
        sms_text::decode_gsm(body)
    };
    let source = deliver.source_addr.to_string();
    let from = if deliver.source_addr_ton == Ton::International {
        format!("+{source}")
    } else {
        source
    };
    Some(Report::Text { from, text, ack })
}

/// The value after `name` in a receipt's text (`id:… sub:… stat:DELIVRD …`).
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(name)? + name.len();
    text[start..].split_whitespace().next()
}

/// A `message_state` as receipts' text names it.
fn state_name(state: MessageState) -> &'static str {
    const NAMES: [(MessageState, &str); 7] = [
        (MessageState::Delivered, "DELIVRD"),
        (MessageState::Expired, "EXPIRED"),
        (MessageState::Deleted, "DELETED"),
        (MessageState::Undeliverable, "UNDELIV"),
        (MessageState::Rejected, "REJECTD"),
        (MessageState::Accepted, "ACCEPTD"),
        (MessageState::Enroute, "ENROUTE"),
    ];
    NAMES
        .iter()
        .find(|(known, _)| *known == state)
        .map_or("UNKNOWN", |(_, name)| name)
}

/// Lost links, timeouts and the SMSC's "slow down" are worth another try;
/// any other refusal is the message's own fault.
fn classify(error: Error) -> SubmitError {
    let Error::UnexpectedResponse { response } = &error else {
        return SubmitError::Transient(error.to_string());
    };
    let status = response.status();
    let transient = matches!(
        status,
        CommandStatus::EsmeRthrottled | CommandStatus::EsmeRmsgqful | CommandStatus::EsmeRsyserr
    );
    let text = format!("the SMSC answered {status:?}");
    if transient {
        SubmitError::Transient(text)
    } else {
        SubmitError::Permanent(text)
    }
}

/// Settings were checked to be short ASCII at start.
fn c_octets<const MIN: usize, const MAX: usize>(value: &str) -> COctetString<MIN, MAX> {
    COctetString::from_str(value).unwrap_or_else(|_| COctetString::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_fields_are_read_from_the_text() {
        let text = "id:0A1B2C sub:001 dlvrd:001 submit date:2612011200 done date:2612011201 stat:DELIVRD err:000 text:";
        assert_eq!(field(text, "id:"), Some("0A1B2C"));
        assert_eq!(field(text, "stat:"), Some("DELIVRD"));
        assert_eq!(field(text, "none:"), None);
    }

    #[test]
    fn long_chinese_text_goes_in_ucs2_parts_with_one_reference() {
        let provider = SmppProvider::new(SmppConfig {
            source_addr: "10690000".into(),
            ..SmppConfig::default()
        });
        let text = "新工单：".repeat(30);
        let split = sms_text::split(&text);
        let message = OutboundSms {
            id: uuid::Uuid::now_v7(),
            to: "+8613800138000".into(),
            text: text.clone(),
            parts: split.parts,
            encoding: split.encoding,
        };
        let pdus = provider.pdus(&message).expect("pdus");
        assert_eq!(pdus.len(), 2);
        let reference = message.id.as_bytes()[15];
        for (pdu, sequence) in pdus.iter().zip(1u8..) {
            let data = pdu.short_message().as_ref();
            assert_eq!(&data[..6], &[5, 0, 3, reference, 2, sequence]);
            assert!(data.len() <= 140, "{} octets", data.len());
            assert_eq!(pdu.data_coding, DataCoding::Ucs2);
            assert_eq!(pdu.destination_addr.to_string(), "8613800138000");
        }
    }
}
