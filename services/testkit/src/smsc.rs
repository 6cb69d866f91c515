//! A stand-in SMSC on rusmpp's tokio codec: binds, `submit_sm` answered at
//! once or after a delay (each on its own, so a client's window shows),
//! delivery receipts and technicians' texts (MO), redelivered on the next bind
//! until acknowledged, throttling, refused binds and cut links, and a record
//! of every part it took.

use std::{
    net::SocketAddr,
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use rusmpp::{
    Command, CommandStatus, Pdu,
    pdus::{BindReceiverResp, BindTransceiverResp, BindTransmitterResp, DeliverSm, SubmitSmResp},
    tlvs::{MessageDeliveryRequestTlvValue, TlvTag, TlvValue},
    tokio_codec::CommandCodec,
    types::{COctetString, OctetString},
    values::{DataCoding, EsmClass, MessageState, MessageType, Ton},
};
use tokio::{
    net::TcpListener,
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
};
use tokio_util::codec::Framed;

/// One `submit_sm` the SMSC took.
#[derive(Clone, Debug)]
pub struct Part {
    /// The id it answered with.
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub data_coding: u8,
    pub esm_class: u8,
    pub short_message: Vec<u8>,
    /// The sender's vendor TLV 0x1400: the text's stable id.
    pub stable_id: Option<String>,
    /// Whether a receipt was asked for.
    pub receipt: bool,
}

impl Part {
    /// The concatenation header's (reference, total, sequence), if any.
    pub fn concatenation(&self) -> Option<(u8, u8, u8)> {
        match self.short_message.as_slice() {
            [5, 0, 3, reference, total, sequence, ..] if self.esm_class & 0x40 != 0 => {
                Some((*reference, *total, *sequence))
            }
            _ => None,
        }
    }

    /// The text of this part, decoded (UCS-2, or GSM unpacked as ASCII).
    pub fn text(&self) -> String {
        let body = match self.concatenation() {
            Some(_) => &self.short_message[6..],
            None => &self.short_message[..],
        };
        if self.data_coding == 8 {
            char::decode_utf16(
                body.chunks_exact(2)
                    .map(|pair| u16::from_be_bytes([pair[0], pair[1]])),
            )
            .map(|c| c.unwrap_or('?'))
            .collect()
        } else {
            body.iter().map(|&b| char::from(b)).collect()
        }
    }
}

/// How the SMSC behaves from now on.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Before each `submit_sm_resp`.
    pub delay: Duration,
    /// The next this many `submit_sm` answered `ESME_RTHROTTLED`.
    pub throttle: usize,
    /// The next this many refused for good (`ESME_RINVDSTADR`).
    pub refuse: usize,
    /// Receipts sent for parts that ask for one, with this state
    /// (`DELIVRD`, `UNDELIV`…); `None`: none sent.
    pub receipts: Option<&'static str>,
    /// The receipt goes out before the `submit_sm_resp`.
    pub early_receipts: bool,
    /// Binds are refused (`ESME_RBINDFAIL`).
    pub refuse_binds: bool,
    /// Answers are held back (a stalled SMSC) until this is set false again.
    pub hold: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            throttle: 0,
            refuse: 0,
            receipts: Some("DELIVRD"),
            early_receipts: false,
            refuse_binds: false,
            hold: false,
        }
    }
}

struct State {
    system_id: String,
    password: String,
    behaviour: Mutex<Behaviour>,
    parts: Mutex<Vec<Part>>,
    /// Parts taken, for those who only count (the benchmark).
    taken: AtomicUsize,
    next_id: AtomicU64,
    binds: AtomicUsize,
    receipts_acked: AtomicUsize,
    /// `submit_sm` taken and not answered yet, and the most there were.
    outstanding: AtomicUsize,
    most_outstanding: AtomicUsize,
    /// `deliver_sm` sent and not acknowledged, by sequence number.
    unacked: Mutex<std::collections::BTreeMap<u32, Command>>,
    /// Where to write to each bound session.
    sessions: Mutex<Vec<mpsc::UnboundedSender<Command>>>,
    /// Whether answers may go out (see `Behaviour::hold`).
    open: watch::Sender<bool>,
    /// Bumped to cut every link.
    cut: watch::Sender<u64>,
    changed: Notify,
    /// Keep every part (tests) or only count them (the benchmark).
    keep: bool,
}

pub struct Smsc {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Smsc {
    /// An SMSC on a free loopback port accepting `system_id`/`password`.
    pub async fn start(system_id: &str, password: &str) -> Self {
        Self::start_on("127.0.0.1:0", system_id, password, true).await
    }

    /// The same on `addr`; `keep = false` only counts parts.
    pub async fn start_on(addr: &str, system_id: &str, password: &str, keep: bool) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            system_id: system_id.to_owned(),
            password: password.to_owned(),
            behaviour: Mutex::new(Behaviour::default()),
            parts: Mutex::new(Vec::new()),
            taken: AtomicUsize::new(0),
            next_id: AtomicU64::new(0x1000),
            binds: AtomicUsize::new(0),
            receipts_acked: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(0),
            most_outstanding: AtomicUsize::new(0),
            unacked: Mutex::new(std::collections::BTreeMap::new()),
            sessions: Mutex::new(Vec::new()),
            open: watch::Sender::new(true),
            cut: watch::Sender::new(0),
            changed: Notify::new(),
            keep,
        });
        let accepting = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(
                    Framed::new(stream, CommandCodec::new()),
                    accepting.clone(),
                ));
            }
        });
        Self {
            addr,
            state,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("smpp://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        let hold = {
            let mut behaviour = self.state.behaviour.lock().unwrap();
            change(&mut behaviour);
            behaviour.hold
        };
        self.state.open.send_replace(!hold);
    }

    pub fn parts(&self) -> Vec<Part> {
        self.state.parts.lock().unwrap().clone()
    }

    pub fn taken(&self) -> usize {
        self.state.taken.load(Ordering::SeqCst)
    }

    pub fn binds(&self) -> usize {
        self.state.binds.load(Ordering::SeqCst)
    }

    /// The most `submit_sm` the client had waiting for an answer at once.
    pub fn most_outstanding(&self) -> usize {
        self.state.most_outstanding.load(Ordering::SeqCst)
    }

    pub fn receipts_acked(&self) -> usize {
        self.state.receipts_acked.load(Ordering::SeqCst)
    }

    /// Waits until `done` holds (checked at each change), or `timeout`.
    pub async fn wait(&self, timeout: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.state.changed.notified();
            if done(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(self);
            }
        }
    }

    /// Cuts every open link (the client sees the peer close).
    pub fn cut(&self) {
        self.state.cut.send_modify(|n| *n += 1);
    }

    /// A text from `from` (E.164 without `+`) to the bound client, UCS-2
    /// unless it is ASCII.
    pub fn send_text(&self, from: &str, to: &str, text: &str) {
        let (coding, body) = if text.is_ascii() {
            (DataCoding::McSpecific, text.as_bytes().to_vec())
        } else {
            (
                DataCoding::Ucs2,
                text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            )
        };
        let deliver = DeliverSm::builder()
            .source_addr_ton(Ton::International)
            .source_addr(COctetString::from_str(from).unwrap())
            .destination_addr(COctetString::from_str(to).unwrap())
            .data_coding(coding)
            .short_message(OctetString::from_vec(body).unwrap())
            .build();
        self.state.push(deliver);
    }

    /// A receipt for the part the SMSC answered `message_id` to.
    pub fn send_receipt(&self, message_id: &str, state: &str) {
        self.state.push(receipt(message_id, "", "", state));
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

impl State {
    /// Sends `deliver` to the newest bound session and keeps it until it is
    /// acknowledged: one a dying client never answered goes again on the next
    /// bind, as an SMSC redelivers.
    fn push(&self, deliver: DeliverSm) {
        static SEQUENCE: AtomicU64 = AtomicU64::new(1);
        let sequence =
            u32::try_from(SEQUENCE.fetch_add(1, Ordering::SeqCst) % 0x7FFF_FFFF).unwrap_or(1);
        let command = Command::new(CommandStatus::EsmeRok, sequence, Pdu::DeliverSm(deliver));
        self.unacked
            .lock()
            .unwrap()
            .insert(sequence, command.clone());
        if let Some(session) = self.sessions.lock().unwrap().last() {
            let _ = session.send(command);
        }
    }

    fn redeliver(&self, session: &mpsc::UnboundedSender<Command>) {
        for command in self.unacked.lock().unwrap().values() {
            let _ = session.send(command.clone());
        }
    }
}

fn receipt(message_id: &str, from: &str, to: &str, state: &str) -> DeliverSm {
    let text = format!(
        "id:{message_id} sub:001 dlvrd:{} submit date:2612021200 done date:2612021201 stat:{state} err:000 text:",
        if state == "DELIVRD" { "001" } else { "000" }
    );
    let message_state = match state {
        "DELIVRD" => MessageState::Delivered,
        "EXPIRED" => MessageState::Expired,
        "REJECTD" => MessageState::Rejected,
        _ => MessageState::Undeliverable,
    };
    let mut deliver = DeliverSm::builder()
        .source_addr(COctetString::from_str(if to.is_empty() { "0" } else { to }).unwrap())
        .destination_addr(COctetString::from_str(if from.is_empty() { "0" } else { from }).unwrap())
        .esm_class(EsmClass {
            message_type: MessageType::ShortMessageContainsMCDeliveryReceipt,
            ..EsmClass::default()
        })
        .short_message(OctetString::from_slice(text.as_bytes()).unwrap())
        .build();
    deliver.push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
        COctetString::from_str(message_id).unwrap(),
    ));
    deliver.push_tlv(MessageDeliveryRequestTlvValue::MessageState(message_state));
    deliver
}

async fn serve(framed: Framed<tokio::net::TcpStream, CommandCodec>, state: Arc<State>) {
    let (mut sink, mut stream) = framed.split();
    let (out, mut outgoing) = mpsc::unbounded_channel::<Command>();
    let mut cut = state.cut.subscribe();
    let writer = tokio::spawn(async move {
        while let Some(command) = outgoing.recv().await {
            if sink.send(command).await.is_err() {
                return;
            }
        }
    });
    loop {
        let command = tokio::select! {
            _ = cut.changed() => break,
            command = stream.next() => match command {
                Some(Ok(command)) => command,
                _ => break,
            },
        };
        let sequence = command.sequence_number();
        let answer = |status, pdu: Pdu| Command::new(status, sequence, pdu);
        match command.pdu() {
            Some(Pdu::BindTransceiver(bind)) => {
                let ok = !state.behaviour.lock().unwrap().refuse_binds
                    && bind.system_id.to_string() == state.system_id
                    && bind.password.to_string() == state.password;
                let status = if ok {
                    CommandStatus::EsmeRok
                } else {
                    CommandStatus::EsmeRbindfail
                };
                let resp = BindTransceiverResp::builder()
                    .system_id(COctetString::from_str("standin").unwrap())
                    .build();
                let _ = out.send(answer(status, Pdu::BindTransceiverResp(resp)));
                if ok {
                    state.binds.fetch_add(1, Ordering::SeqCst);
                    state.sessions.lock().unwrap().push(out.clone());
                    state.redeliver(&out);
                    state.changed.notify_waiters();
                }
            }
            Some(Pdu::BindTransmitter(_)) => {
                let resp = BindTransmitterResp::builder().build();
                let _ = out.send(answer(
                    CommandStatus::EsmeRbindfail,
                    Pdu::BindTransmitterResp(resp),
                ));
            }
            Some(Pdu::BindReceiver(_)) => {
                let resp = BindReceiverResp::builder().build();
                let _ = out.send(answer(
                    CommandStatus::EsmeRbindfail,
                    Pdu::BindReceiverResp(resp),
                ));
            }
            Some(Pdu::SubmitSm(submit)) => {
                let behaviour = {
                    let mut behaviour = state.behaviour.lock().unwrap();
                    let now = behaviour.clone();
                    behaviour.throttle = behaviour.throttle.saturating_sub(1);
                    if now.throttle == 0 {
                        behaviour.refuse = behaviour.refuse.saturating_sub(1);
                    }
                    now
                };
                if behaviour.throttle > 0 || behaviour.refuse > 0 {
                    let status = if behaviour.throttle > 0 {
                        CommandStatus::EsmeRthrottled
                    } else {
                        CommandStatus::EsmeRinvdstadr
                    };
                    let _ = out.send(answer(
                        status,
                        Pdu::SubmitSmResp(SubmitSmResp::builder().build()),
                    ));
                    continue;
                }
                let message_id = format!("{:X}", state.next_id.fetch_add(1, Ordering::SeqCst));
                let wants_receipt = u8::from(submit.registered_delivery) & 0x03 != 0;
                if state.keep {
                    let stable_id = submit.tlvs().iter().find_map(|tlv| match tlv.value() {
                        Some(TlvValue::Other {
                            tag: TlvTag::Other(0x1400),
                            value,
                        }) => Some(String::from_utf8_lossy(value.as_ref()).into_owned()),
                        _ => None,
                    });
                    state.parts.lock().unwrap().push(Part {
                        message_id: message_id.clone(),
                        from: submit.source_addr.to_string(),
                        to: submit.destination_addr.to_string(),
                        data_coding: u8::from(submit.data_coding),
                        esm_class: u8::from(submit.esm_class),
                        short_message: submit.short_message().as_ref().to_vec(),
                        stable_id,
                        receipt: wants_receipt,
                    });
                }
                state.taken.fetch_add(1, Ordering::SeqCst);
                let waiting = state.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
                state.most_outstanding.fetch_max(waiting, Ordering::SeqCst);
                let receipt = behaviour.receipts.filter(|_| wants_receipt).map(|stat| {
                    receipt(
                        &message_id,
                        &submit.source_addr.to_string(),
                        &submit.destination_addr.to_string(),
                        stat,
                    )
                });
                let resp = answer(
                    CommandStatus::EsmeRok,
                    Pdu::SubmitSmResp(
                        SubmitSmResp::builder()
                            .message_id(COctetString::from_str(&message_id).unwrap())
                            .build(),
                    ),
                );
                let (delay, early) = (behaviour.delay, behaviour.early_receipts);
                if delay.is_zero() && !early && !behaviour.hold {
                    state.outstanding.fetch_sub(1, Ordering::SeqCst);
                    let _ = out.send(resp);
                    if let Some(receipt) = receipt {
                        state.push(receipt);
                    }
                    state.changed.notify_waiters();
                } else {
                    let (out, state) = (out.clone(), state.clone());
                    tokio::spawn(async move {
                        let mut receipt = receipt;
                        if early && let Some(receipt) = receipt.take() {
                            state.push(receipt);
                        }
                        tokio::time::sleep(delay).await;
                        let _ = state.open.subscribe().wait_for(|open| *open).await;
                        state.outstanding.fetch_sub(1, Ordering::SeqCst);
                        let _ = out.send(resp);
                        if let Some(receipt) = receipt {
                            state.push(receipt);
                        }
                        state.changed.notify_waiters();
                    });
                }
            }
            Some(Pdu::DeliverSmResp(_)) => {
                if state.unacked.lock().unwrap().remove(&sequence).is_some() {
                    state.receipts_acked.fetch_add(1, Ordering::SeqCst);
                }
                state.changed.notify_waiters();
            }
            Some(Pdu::EnquireLink) => {
                let _ = out.send(answer(CommandStatus::EsmeRok, Pdu::EnquireLinkResp));
            }
            Some(Pdu::Unbind) => {
                let _ = out.send(answer(CommandStatus::EsmeRok, Pdu::UnbindResp));
                break;
            }
            _ => {}
        }
    }
    state
        .sessions
        .lock()
        .unwrap()
        .retain(|session| !session.same_channel(&out));
    drop(out);
    // Let the last answers out, then the link closes.
    let _ = tokio::time::timeout(Duration::from_millis(200), writer).await;
    state.changed.notify_waiters();
}
