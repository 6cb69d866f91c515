//! How any replica reaches the router: in process on the replica holding the
//! router lease, over gRPC (`RouterPeerService`, carrying the caller's own
//! token, and routing's peer key proving the sender is a replica) on the
//! others. During a takeover, calls and streams wait for the new holder (up
//! to `routing.forward_timeout`) instead of failing.

use std::{sync::Arc, time::Duration};

use hotline_kit::{
    ApiError, ApiResult,
    auth::Principal,
    lease::{self, Grant, Leadership},
    telemetry,
};
use hotline_proto::routing::v1::{
    ExecuteRequest, SubscribeRequest, router_peer_service_client::RouterPeerServiceClient,
};
use sea_orm::DatabaseConnection;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tonic::{metadata::MetadataValue, transport::Channel};

use crate::{
    domain::{
        command::{Actor, Command, Outcome},
        model::{AgentId, QueueId},
    },
    leader::{Hub, Notification, Request, not_leader},
};

/// The router lease's name in routing's `lease` table.
pub const LEASE: &str = "routing.router";

/// The metadata carrying the peer key (`store::peer_key`).
pub const PEER_KEY: &str = "x-hotline-peer-key";

/// What a stream follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topic {
    /// One agent: their offers, their tasks' changes, their state.
    Agent(AgentId),
    /// Every task change in these queues (all when empty).
    Tasks(Vec<QueueId>),
}

struct Remote {
    address: String,
    client: RouterPeerServiceClient<Channel>,
}

pub struct Peers {
    leadership: Arc<Leadership>,
    leading: watch::Receiver<Option<Grant>>,
    requests: mpsc::Sender<Request>,
    db: DatabaseConnection,
    holder: String,
    remote: tokio::sync::Mutex<Option<Remote>>,
    forward_timeout: Duration,
    hub: Arc<Hub>,
    key: String,
}

/// How a stream attempt ended.
enum Ended {
    /// The client went away or the process shuts down.
    Gone,
    /// The router moved (or the stream fell behind): subscribe again.
    Again,
}

fn is_unavailable(error: &ApiError) -> bool {
    error.code == hotline_kit::ErrorCode::Unavailable
}

fn outgoing<T>(principal: &Principal, key: &str, message: T) -> ApiResult<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let bearer = MetadataValue::try_from(format!("Bearer {}", principal.token))
        .map_err(|_| ApiError::unauthenticated("token is not valid metadata"))?;
    request.metadata_mut().insert("authorization", bearer);
    let key = MetadataValue::try_from(key).map_err(ApiError::internal)?;
    request.metadata_mut().insert(PEER_KEY, key);
    if let Some(traceparent) = telemetry::current_traceparent()
        && let Ok(value) = MetadataValue::try_from(traceparent)
    {
        request.metadata_mut().insert(telemetry::TRACEPARENT, value);
    }
    Ok(request)
}

impl Peers {
    pub fn new(
        leadership: Arc<Leadership>,
        requests: mpsc::Sender<Request>,
        db: DatabaseConnection,
        forward_timeout: Duration,
        hub: Arc<Hub>,
        key: String,
    ) -> Self {
        Self {
            leading: leadership.watch(),
            holder: leadership.campaign().holder.clone(),
            leadership,
            requests,
            db,
            remote: tokio::sync::Mutex::new(None),
            forward_timeout,
            hub,
            key,
        }
    }

    /// Whether a request to the peer service comes from a replica: it
    /// carries this database's peer key (compared in constant time).
    pub fn check_peer<T>(&self, request: &tonic::Request<T>) -> ApiResult<()> {
        let presented = request
            .metadata()
            .get(PEER_KEY)
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        aws_lc_rs::constant_time::verify_slices_are_equal(presented, self.key.as_bytes()).map_err(
            |_| ApiError::forbidden("the router's peer service answers only routing replicas"),
        )
    }

    pub fn is_leader(&self) -> bool {
        self.leading.borrow().is_some()
    }

    pub fn leadership(&self) -> &Arc<Leadership> {
        &self.leadership
    }

    /// Runs `command` on the router, wherever it is.
    pub async fn execute(&self, principal: &Principal, command: Command) -> ApiResult<Outcome> {
        let deadline = tokio::time::Instant::now() + self.forward_timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let attempt = if self.is_leader() {
                self.local(Actor::of(principal), command.clone()).await
            } else {
                self.forward(principal, &command).await
            };
            match attempt {
                Err(error) if is_unavailable(&error) => {
                    *self.remote.lock().await = None;
                    if tokio::time::Instant::now() + pause >= deadline {
                        return Err(ApiError::unavailable(
                            "router_unavailable",
                            "no replica holds the router right now (a takeover takes a few seconds); retry",
                        ));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    /// Runs `command` on this replica's router (the leader's own path, and the
    /// peer service's).
    pub async fn local(&self, actor: Actor, command: Command) -> ApiResult<Outcome> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request {
                actor,
                command,
                traceparent: telemetry::current_traceparent(),
                reply,
            })
            .await
            .map_err(|_| not_leader())?;
        answer.await.map_err(|_| not_leader())?
    }

    async fn leader_client(&self) -> ApiResult<RouterPeerServiceClient<Channel>> {
        let holder = lease::holder(&self.db, LEASE)
            .await
            .map_err(|_| not_leader())?
            .filter(|holder| !holder.expired && holder.holder != self.holder)
            .ok_or_else(not_leader)?;
        let mut remote = self.remote.lock().await;
        if let Some(current) = remote.as_ref()
            && current.address == holder.address
        {
            return Ok(current.client.clone());
        }
        let channel = Channel::from_shared(holder.address.clone())
            .map_err(|_| not_leader())?
            .connect_timeout(Duration::from_secs(1))
            .timeout(self.forward_timeout)
            .connect_lazy();
        let client = RouterPeerServiceClient::new(channel);
        *remote = Some(Remote {
            address: holder.address,
            client: client.clone(),
        });
        Ok(client)
    }

    async fn forward(&self, principal: &Principal, command: &Command) -> ApiResult<Outcome> {
        let mut client = self.leader_client().await?;
        let bytes = serde_json::to_vec(command).map_err(ApiError::internal)?;
        let request = outgoing(principal, &self.key, ExecuteRequest { command: bytes })?;
        match client.execute(request).await {
            Ok(response) => serde_json::from_slice(&response.into_inner().outcome).map_err(|e| {
                ApiError::internal(anyhow::anyhow!("router answered something unreadable: {e}"))
            }),
            // The connection broke before the router answered (its holder died
            // mid-request): the caller retries wherever the router is now. A
            // command that did commit answers as repeated (idempotent creation,
            // 404/409 for the rest).
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unknown | tonic::Code::Unavailable
                ) && ApiError::from(status.clone()).kind == "upstream_error" =>
            {
                Err(not_leader())
            }
            Err(status) => Err(ApiError::from(status)),
        }
    }

    /// A stream of `topic`'s changes for `principal`: first what it holds
    /// now, then every change, resubscribing across takeovers, until `stop`
    /// or the receiver is dropped. An error ends it (403, 404...).
    pub fn stream(
        self: &Arc<Self>,
        principal: Principal,
        topic: Topic,
        stop: CancellationToken,
    ) -> mpsc::Receiver<ApiResult<Notification>> {
        let (sender, receiver) = mpsc::channel(256);
        let peers = self.clone();
        tokio::spawn(async move {
            let deadline_pause = Duration::from_millis(200);
            loop {
                let attempt = if peers.is_leader() {
                    peers.stream_local(&principal, &topic, &sender, &stop).await
                } else {
                    peers
                        .stream_remote(&principal, &topic, &sender, &stop)
                        .await
                };
                match attempt {
                    Ok(Ended::Gone) => return,
                    Ok(Ended::Again) => {}
                    Err(error) if is_unavailable(&error) => {}
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = sender.closed() => return,
                    () = tokio::time::sleep(deadline_pause) => {}
                }
            }
        });
        receiver
    }

    /// Streams from this replica's router until it moves or the client goes.
    async fn stream_local(
        &self,
        principal: &Principal,
        topic: &Topic,
        sender: &mpsc::Sender<ApiResult<Notification>>,
        stop: &CancellationToken,
    ) -> ApiResult<Ended> {
        let mut changes = match topic {
            Topic::Agent(agent) => self.hub.subscribe_agent(*agent),
            Topic::Tasks(_) => self.hub.subscribe_tasks(),
        };
        let snapshot = match topic {
            Topic::Agent(agent) => Command::AgentOffers { agent: *agent },
            Topic::Tasks(queues) => Command::ActiveTasks {
                queues: queues.clone(),
            },
        };
        let Outcome::Tasks { tasks } = self.local(Actor::of(principal), snapshot).await? else {
            return Ok(Ended::Again);
        };
        for task in tasks {
            if sender
                .send(Ok(Notification::Snapshot { task }))
                .await
                .is_err()
            {
                return Ok(Ended::Gone);
            }
        }
        let mut leading = self.leading.clone();
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(Ended::Gone),
                () = sender.closed() => return Ok(Ended::Gone),
                changed = leading.changed() => {
                    if changed.is_err() || leading.borrow().is_none() {
                        return Ok(Ended::Again);
                    }
                }
                change = changes.recv() => match change {
                    Ok(notification) => {
                        if !wanted(topic, &notification) {
                            continue;
                        }
                        if sender.send(Ok((*notification).clone())).await.is_err() {
                            return Ok(Ended::Gone);
                        }
                    }
                    // Fell behind or the hub went: start over with a snapshot.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => {
                        return Ok(Ended::Again);
                    }
                },
            }
        }
    }

    async fn stream_remote(
        &self,
        principal: &Principal,
        topic: &Topic,
        sender: &mpsc::Sender<ApiResult<Notification>>,
        stop: &CancellationToken,
    ) -> ApiResult<Ended> {
        let mut client = self.leader_client().await?;
        let message = match topic {
            Topic::Agent(agent) => SubscribeRequest {
                agent_id: agent.to_string(),
                queue_ids: Vec::new(),
            },
            Topic::Tasks(queues) => SubscribeRequest {
                agent_id: String::new(),
                queue_ids: queues.iter().map(ToString::to_string).collect(),
            },
        };
        let mut stream = client
            .subscribe(outgoing(principal, &self.key, message)?)
            .await
            .map_err(ApiError::from)?
            .into_inner();
        loop {
            tokio::select! {
                () = stop.cancelled() => return Ok(Ended::Gone),
                () = sender.closed() => return Ok(Ended::Gone),
                item = stream.message() => match item {
                    Ok(Some(message)) => {
                        let Ok(notification) = serde_json::from_slice::<Notification>(&message.notification) else {
                            continue;
                        };
                        if sender.send(Ok(notification)).await.is_err() {
                            return Ok(Ended::Gone);
                        }
                    }
                    Ok(None) => return Ok(Ended::Again),
                    Err(status) => {
                        let error = ApiError::from(status);
                        return if is_unavailable(&error) || error.code == hotline_kit::ErrorCode::Internal {
                            Ok(Ended::Again)
                        } else {
                            Err(error)
                        };
                    }
                },
            }
        }
    }

    /// The peer service's side of a follower's subscription: this replica's
    /// router only, ending when it moves (the follower subscribes again).
    pub fn serve_subscription(
        self: &Arc<Self>,
        principal: Principal,
        topic: Topic,
        stop: CancellationToken,
    ) -> ApiResult<mpsc::Receiver<ApiResult<Notification>>> {
        if !self.is_leader() {
            return Err(not_leader());
        }
        let (sender, receiver) = mpsc::channel(256);
        let peers = self.clone();
        tokio::spawn(async move {
            if let Err(error) = peers.stream_local(&principal, &topic, &sender, &stop).await {
                let _ = sender.send(Err(error)).await;
            }
        });
        Ok(receiver)
    }
}

/// Whether a notification belongs on a stream (the hub fans agent changes out
/// per agent already; task watchers may narrow to queues).
fn wanted(topic: &Topic, notification: &Notification) -> bool {
    match (topic, notification) {
        (Topic::Tasks(queues), Notification::Task { task, .. }) => {
            queues.is_empty() || queues.contains(&task.queue_id)
        }
        (Topic::Tasks(_), Notification::Agent { .. } | Notification::Snapshot { .. }) => false,
        (Topic::Agent(_), _) => true,
    }
}
