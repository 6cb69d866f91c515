//! `hotline simulate`: a call center driven against a running suite through its
//! public APIs only, like a switch's adapter and agents' desktops would —
//! callers arriving at random (Poisson), agents answering offers from their
//! Server-Sent Events streams, talking for random handle times, callers who
//! give up — and what the callers and agents saw: offered, answered,
//! abandoned, service level, speed of answer, occupancy, and how far the
//! estimated waits announced to callers were from the waits they then had.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Exp, LogNormal};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinSet};

/// How handle times spread around their mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HandleTimeDistribution {
    Exponential,
    /// Log-normal with σ = 0.6 (most calls near the mean, a long tail).
    Lognormal,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub server: String,
    pub client_id: String,
    pub client_secret: String,
    pub agents: usize,
    pub queues: usize,
    pub calls_per_second: f64,
    pub handle_time: Duration,
    pub handle_time_dist: HandleTimeDistribution,
    pub wrap_up: Duration,
    /// Mean patience (exponential); `None`: nobody abandons.
    pub patience: Option<Duration>,
    pub sl_threshold: Duration,
    pub duration: Duration,
    pub seed: u64,
}

/// What the simulated callers and agents saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Answered within the threshold / (answered + abandoned after it).
    pub service_level: f64,
    pub asa_seconds: f64,
    pub abandon_rate: f64,
    /// Agents' time spent on calls (offer to end of wrap-up) over their time signed in.
    pub occupancy: f64,
    /// Mean |announced estimated wait − wait the caller then had|, answered callers.
    pub ewt_mean_abs_error_seconds: f64,
    /// (mean announced estimate − mean actual wait) / mean actual wait.
    pub ewt_bias: f64,
    /// Calls still waiting when the run ended (hung up, not counted above).
    pub unfinished: u64,
    pub agents: usize,
    pub queues: usize,
    pub duration_seconds: f64,
    /// Measured: calls per second offered.
    pub calls_per_second: f64,
    /// Measured: mean time an agent spent per answered call, offer to end of
    /// wrap-up, by routing's clock.
    pub mean_handle_seconds: f64,
    /// Measured: mean time calls waited in line until offered, by routing's clock.
    pub mean_queue_wait_seconds: f64,
    /// What Erlang C predicts for the measured traffic (one queue, nobody
    /// abandoning): probability of waiting, service level, speed of answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erlang_c: Option<ErlangC>,
    /// routing's live statistics for the simulated queues, summed.
    pub server: ServerFigures,
}

/// Erlang C's figures for the measured arrival rate and handle time, beside
/// the same figures measured by routing's clock (time in line until offered).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ErlangC {
    pub probability_of_waiting: f64,
    pub service_level: f64,
    pub asa_seconds: f64,
    pub measured_probability_of_waiting: f64,
    pub measured_service_level: f64,
    pub measured_asa_seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerFigures {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub service_level: Option<f64>,
    pub asa_seconds: Option<f64>,
}

/// Erlang C: the probability that a call waits with `agents` servers and
/// `load` Erlangs of traffic (None when the load is at or past capacity).
pub fn erlang_c_wait_probability(agents: usize, load: f64) -> Option<f64> {
    let n = agents as f64;
    if load <= 0.0 || load >= n {
        return None;
    }
    // Erlang B by its recurrence (numerically stable), then C from B.
    let mut b = 1.0;
    for k in 1..=agents {
        b = load * b / (k as f64 + load * b);
    }
    Some(n * b / (n - load * (1.0 - b)))
}

/// Erlang C's service level and speed of answer for mean handle time `handle`.
pub fn erlang_c(
    agents: usize,
    arrivals_per_second: f64,
    handle: f64,
    threshold: f64,
) -> Option<(f64, f64, f64)> {
    let load = arrivals_per_second * handle;
    let waits = erlang_c_wait_probability(agents, load)?;
    let n = agents as f64;
    let service_level = 1.0 - waits * (-(n - load) * threshold / handle).exp();
    let asa = waits * handle / (n - load);
    Some((waits, service_level, asa))
}

struct Client {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl Client {
    async fn connect(options: &Options) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let server = options.server.trim_end_matches('/').to_owned();
        let response = http
            .post(format!("{server}/oauth/token"))
            .basic_auth(&options.client_id, Some(&options.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .with_context(|| format!("reaching {server}"))?;
        if !response.status().is_success() {
            anyhow::bail!(
                "{server} refused the client {}: {}",
                options.client_id,
                response.text().await.unwrap_or_default()
            );
        }
        let body: Value = response.json().await?;
        let token = body["access_token"]
            .as_str()
            .context("no access token in the answer")?
            .to_owned();
        Ok(Self {
            http,
            server,
            token,
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// POST that must succeed with `expected`.
    async fn expect(&self, path: &str, body: &Value, expected: u16) -> anyhow::Result<Value> {
        let (status, answer) = self.post(path, body).await?;
        if status != expected {
            anyhow::bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }
}

/// One call as its caller saw it.
#[derive(Clone, Debug, Default)]
struct CallRecord {
    /// The estimated wait announced on arrival (0 when offered at once).
    estimate: Option<f64>,
    /// Seconds until an agent answered, if one did.
    answered_after: Option<f64>,
    /// Seconds in line until offered, by routing's clock.
    queue_wait: Option<f64>,
    abandoned_after: Option<f64>,
    unfinished: bool,
}

/// When an agent answered, and after how long in line by routing's clock.
type Answered = (Instant, Option<f64>);

#[derive(Default)]
struct Shared {
    /// Callers waiting for an agent, by call id.
    waiting: Mutex<HashMap<String, oneshot::Sender<Answered>>>,
    calls: Mutex<Vec<CallRecord>>,
    /// Per agent: seconds busy (offer to end of wrap-up) within the run.
    busy: Mutex<Vec<f64>>,
    handled: Mutex<Vec<f64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub async fn run(options: Options) -> anyhow::Result<Report> {
    if options.agents == 0 || options.queues == 0 || options.calls_per_second <= 0.0 {
        anyhow::bail!("--agents, --queues and --calls-per-second must be above 0");
    }
    let client = Arc::new(Client::connect(&options).await?);
    let run = format!(
        "sim-{}-{}",
        options.seed,
        chrono::Utc::now().format("%H%M%S")
    );
    let queues = setup_queues(&client, &run, &options).await?;
    let agents = setup_agents(&client, &run, &options, &queues).await?;
    let shared = Arc::new(Shared::default());
    lock(&shared.busy).resize(agents.len(), 0.0);

    let started = Instant::now();
    let stop_agents = tokio_util::sync::CancellationToken::new();
    let mut agent_tasks = JoinSet::new();
    for (index, agent) in agents.iter().enumerate() {
        let (client, shared, stop) = (client.clone(), shared.clone(), stop_agents.clone());
        let (agent, options) = (agent.clone(), options.clone());
        agent_tasks
            .spawn(async move { work(client, shared, agent, index, options, started, stop).await });
    }
    // Let every stream connect before the first call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();

    let mut rng = StdRng::seed_from_u64(options.seed);
    let gaps = Exp::new(options.calls_per_second)?;
    let patience = options
        .patience
        .map(|mean| Exp::new(1.0 / mean.as_secs_f64().max(1e-3)))
        .transpose()?;
    let mut callers = JoinSet::new();
    let mut number = 0u64;
    let mut next = Duration::ZERO;
    loop {
        next += Duration::from_secs_f64(gaps.sample(&mut rng));
        if next >= options.duration {
            break;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(started + next)).await;
        number += 1;
        let call_id = format!("{run}-call-{number}");
        let queue = queues[rng.random_range(0..queues.len())].clone();
        let give_up = patience
            .as_ref()
            .map(|p| Duration::from_secs_f64(p.sample(&mut rng)));
        let (client, shared) = (client.clone(), shared.clone());
        callers.spawn(async move { call(client, shared, call_id, queue, give_up).await });
    }
    let arrivals_ended = started.elapsed();
    // Calls in line get a chance to be answered; past that, they hang up.
    let drain = Duration::from_secs(30).max(options.handle_time * 10);
    let _ = tokio::time::timeout(drain, async {
        while callers.join_next().await.is_some() {}
    })
    .await;
    hang_up_the_rest(&client, &shared).await;
    callers.abort_all();
    // Agents finish the calls in hand.
    let _ = tokio::time::timeout(
        options.handle_time * 20 + options.wrap_up + Duration::from_secs(5),
        async {
            loop {
                let busy = agents_busy(&client, &agents).await;
                if !busy {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        },
    )
    .await;
    let elapsed = started.elapsed();
    stop_agents.cancel();
    while agent_tasks.join_next().await.is_some() {}
    let server = server_figures(&client, &queues).await?;
    teardown(&client, &agents, &queues).await;
    Ok(report(
        &options,
        &shared,
        queues.len(),
        agents.len(),
        arrivals_ended,
        elapsed,
        number,
        server,
    ))
}

async fn setup_queues(
    client: &Client,
    run: &str,
    options: &Options,
) -> anyhow::Result<Vec<String>> {
    let mut queues = Vec::with_capacity(options.queues);
    for index in 0..options.queues {
        let name = format!("{run}-q{index}");
        client
            .expect(
                "/api/v1/queues",
                &json!({
                    "name": name,
                    "description": "made by hotline simulate",
                    "target": format!("group == \"{name}\""),
                    "strategy": "longest_idle",
                    "service_level_seconds": options.sl_threshold.as_secs().max(1),
                    "wrap_up_seconds": options.wrap_up.as_secs(),
                    "expected_handle_seconds": (options.handle_time + options.wrap_up).as_secs().max(1),
                }),
                201,
            )
            .await?;
        queues.push(name);
    }
    Ok(queues)
}

#[derive(Clone, Debug)]
struct SimAgent {
    id: String,
}

async fn setup_agents(
    client: &Client,
    run: &str,
    options: &Options,
    queues: &[String],
) -> anyhow::Result<Vec<SimAgent>> {
    let mut agents = Vec::with_capacity(options.agents);
    for index in 0..options.agents {
        let created = client
            .expect(
                "/api/v1/agents",
                &json!({"name": format!("{run}-agent-{index}"), "groups": [queues[index % queues.len()]]}),
                201,
            )
            .await?;
        let id = created["id"].as_str().context("agent id")?.to_owned();
        client
            .expect(&format!("/api/v1/agents/{id}/sign-in"), &json!({}), 200)
            .await?;
        agents.push(SimAgent { id });
    }
    Ok(agents)
}

/// One caller: arrives, hears the estimated wait, waits for an agent or gives up.
async fn call(
    client: Arc<Client>,
    shared: Arc<Shared>,
    call_id: String,
    queue: String,
    give_up: Option<Duration>,
) {
    let (answered, answer) = oneshot::channel();
    lock(&shared.waiting).insert(call_id.clone(), answered);
    let arrived = Instant::now();
    let offered = client
        .post(
            "/api/v1/cti/calls",
            &json!({"call_id": call_id, "queue": queue}),
        )
        .await;
    let estimate = match &offered {
        Ok((201, task)) if task["status"] == "reserved" => Some(0.0),
        Ok((201, task)) => task["estimated_wait_seconds"].as_f64(),
        Ok((status, body)) => {
            tracing::warn!(status, %body, "the call was refused");
            lock(&shared.waiting).remove(&call_id);
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "the call could not be offered");
            lock(&shared.waiting).remove(&call_id);
            return;
        }
    };
    let mut record = CallRecord {
        estimate,
        ..CallRecord::default()
    };
    let patience = async {
        match give_up {
            Some(wait) => tokio::time::sleep(wait).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        answered = answer => {
            if let Ok((at, queue_wait)) = answered {
                record.answered_after = Some(at.duration_since(arrived).as_secs_f64());
                record.queue_wait = queue_wait;
            }
        }
        () = patience => {
            if lock(&shared.waiting).remove(&call_id).is_some() {
                let path = format!("/api/v1/cti/calls/{call_id}/abandoned");
                match client.post(&path, &json!({})).await {
                    Ok((200, task)) if task["status"] == "abandoned" => {
                        record.abandoned_after = Some(arrived.elapsed().as_secs_f64());
                    }
                    // An agent answered as the caller hung up.
                    _ => record.answered_after = Some(arrived.elapsed().as_secs_f64()),
                }
            }
        }
    }
    lock(&shared.calls).push(record);
}

/// At the end: callers still in line hang up.
async fn hang_up_the_rest(client: &Client, shared: &Shared) {
    let waiting: Vec<String> = lock(&shared.waiting)
        .drain()
        .map(|(call, _)| call)
        .collect();
    for call_id in waiting {
        let _ = client
            .post(
                &format!("/api/v1/cti/calls/{call_id}/abandoned"),
                &json!({}),
            )
            .await;
        lock(&shared.calls).push(CallRecord {
            unfinished: true,
            ..CallRecord::default()
        });
    }
}

/// One agent at their desk: answers every offer on their stream, talks, ends the call.
async fn work(
    client: Arc<Client>,
    shared: Arc<Shared>,
    agent: SimAgent,
    index: usize,
    options: Options,
    started: Instant,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut rng = StdRng::seed_from_u64(options.seed.wrapping_add(1 + index as u64));
    let mean = options.handle_time.as_secs_f64().max(1e-3);
    let lognormal = LogNormal::new(mean.ln() - 0.18, 0.6).ok();
    let exponential = Exp::new(1.0 / mean).ok();
    loop {
        let response = client
            .http
            .get(format!(
                "{}/api/v1/agents/{}/stream",
                client.server, agent.id
            ))
            .bearer_auth(&client.token)
            .send()
            .await;
        let Ok(response) = response else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut events = EventStream::new(response);
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.next() => event,
            };
            let Some((name, data)) = event else { break };
            let Some(task) = offer_for(&name, data, &agent.id) else {
                continue;
            };
            let talk = match options.handle_time_dist {
                HandleTimeDistribution::Exponential => {
                    exponential.as_ref().map(|d| d.sample(&mut rng))
                }
                HandleTimeDistribution::Lognormal => lognormal.as_ref().map(|d| d.sample(&mut rng)),
            }
            .unwrap_or(mean);
            let (client, shared, wrap_up) = (client.clone(), shared.clone(), options.wrap_up);
            tokio::spawn(async move {
                answer_and_talk(
                    client,
                    shared,
                    task,
                    index,
                    Duration::from_secs_f64(talk),
                    wrap_up,
                    started,
                )
                .await;
            });
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

/// Server-Sent Events read off a response as they come.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event with JSON data, as `(event, data)`; `None` once the stream ends.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = name.to_owned();
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                if let Ok(data) = serde_json::from_str(&data) {
                    return Some((event, data));
                }
            }
            let chunk = self.response.chunk().await.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// The task an agent's stream offers them, if this event is an offer (or a
/// snapshot of one still ringing, after a reconnection).
pub fn offer_for(event: &str, data: Value, agent: &str) -> Option<Value> {
    if event != "offer" && event != "snapshot" {
        return None;
    }
    let task = data.get("task")?.clone();
    (task["status"] == "reserved" && task["reservation"]["agent_id"] == agent).then_some(task)
}

async fn answer_and_talk(
    client: Arc<Client>,
    shared: Arc<Shared>,
    task: Value,
    index: usize,
    talk: Duration,
    wrap_up: Duration,
    started: Instant,
) {
    let offered = Instant::now();
    let (Some(reservation), Some(id)) = (task["reservation"]["id"].as_str(), task["id"].as_str())
    else {
        return;
    };
    let Ok((200, accepted)) = client
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &json!({}),
        )
        .await
    else {
        return;
    };
    let offered_at = timestamp(&accepted["reservation"]["offered_at"]);
    let queue_wait = offered_at
        .zip(timestamp(&accepted["created_at"]))
        .map(|(offered, created)| (offered - created).as_seconds_f64());
    if let Some(call_id) = task["external_id"].as_str()
        && let Some(caller) = lock(&shared.waiting).remove(call_id)
    {
        let _ = caller.send((Instant::now(), queue_wait));
    }
    tokio::time::sleep(talk).await;
    let completed = client
        .post(&format!("/api/v1/tasks/{id}/complete"), &json!({}))
        .await;
    // With wrap-up, routing ends it later: the agent is busy that long more.
    let ended = completed.ok().and_then(|(_, task)| {
        timestamp(&task["ended_at"]).or_else(|| timestamp(&task["completed_at"]))
    });
    let handled = offered_at
        .zip(ended)
        .map(|(from, to)| (to - from).as_seconds_f64() + wrap_up.as_secs_f64());
    let busy = offered.elapsed() + wrap_up;
    if offered >= started {
        if let Some(total) = lock(&shared.busy).get_mut(index) {
            *total += busy.as_secs_f64();
        }
        if let Some(handled) = handled {
            lock(&shared.handled).push(handled);
        }
    }
}

fn timestamp(value: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    value.as_str()?.parse().ok()
}

async fn agents_busy(client: &Client, agents: &[SimAgent]) -> bool {
    for agent in agents {
        if let Ok((200, view)) = client
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/agents/{}", agent.id),
                None,
            )
            .await
            && view["tasks"]
                .as_array()
                .is_some_and(|tasks| !tasks.is_empty())
        {
            return true;
        }
    }
    false
}

async fn server_figures(client: &Client, queues: &[String]) -> anyhow::Result<ServerFigures> {
    let (status, stats) = client
        .send(reqwest::Method::GET, "/api/v1/stats/queues", None)
        .await?;
    if status != 200 {
        anyhow::bail!("GET /api/v1/stats/queues answered {status}: {stats}");
    }
    let mut figures = ServerFigures::default();
    let (mut within, mut held_against, mut wait) = (0u64, 0u64, 0.0);
    for queue in stats.as_array().into_iter().flatten() {
        if !queue["queue"]
            .as_str()
            .is_some_and(|name| queues.iter().any(|q| q == name))
        {
            continue;
        }
        let count = |key: &str| queue[key].as_u64().unwrap_or(0);
        figures.offered += count("offered");
        figures.answered += count("answered");
        figures.abandoned += count("abandoned");
        within += count("answered_within_threshold");
        held_against +=
            count("answered") + count("abandoned") - count("abandoned_within_threshold");
        wait += queue["asa_seconds"].as_f64().unwrap_or(0.0) * count("answered") as f64;
    }
    figures.service_level = (held_against > 0).then(|| within as f64 / held_against as f64);
    figures.asa_seconds = (figures.answered > 0).then(|| wait / figures.answered as f64);
    Ok(figures)
}

async fn teardown(client: &Client, agents: &[SimAgent], queues: &[String]) {
    for agent in agents {
        let _ = client
            .post(&format!("/api/v1/agents/{}/sign-out", agent.id), &json!({}))
            .await;
        let _ = client
            .send(
                reqwest::Method::DELETE,
                &format!("/api/v1/agents/{}", agent.id),
                None,
            )
            .await;
    }
    for queue in queues {
        let _ = client
            .send(
                reqwest::Method::DELETE,
                &format!("/api/v1/queues/{queue}"),
                None,
            )
            .await;
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    options: &Options,
    shared: &Shared,
    queues: usize,
    agents: usize,
    arrivals: Duration,
    elapsed: Duration,
    offered: u64,
    server: ServerFigures,
) -> Report {
    let calls = lock(&shared.calls).clone();
    let threshold = options.sl_threshold.as_secs_f64();
    let answered: Vec<&CallRecord> = calls
        .iter()
        .filter(|c| c.answered_after.is_some())
        .collect();
    let abandoned: Vec<&CallRecord> = calls
        .iter()
        .filter(|c| c.abandoned_after.is_some())
        .collect();
    let waits: Vec<f64> = answered.iter().filter_map(|c| c.answered_after).collect();
    let within = waits.iter().filter(|w| **w <= threshold).count() as f64;
    let late_abandons = abandoned
        .iter()
        .filter(|c| c.abandoned_after.is_some_and(|w| w > threshold))
        .count() as f64;
    let held_against = answered.len() as f64 + late_abandons;
    let mean = |values: &[f64]| {
        if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        }
    };
    let estimated: Vec<(f64, f64)> = answered
        .iter()
        .filter_map(|c| Some((c.estimate?, c.answered_after?)))
        .collect();
    let errors: Vec<f64> = estimated.iter().map(|(e, w)| (e - w).abs()).collect();
    let mean_estimate = mean(&estimated.iter().map(|(e, _)| *e).collect::<Vec<_>>());
    let mean_wait = mean(&estimated.iter().map(|(_, w)| *w).collect::<Vec<_>>());
    let busy: f64 = lock(&shared.busy).iter().sum();
    let handled = lock(&shared.handled).clone();
    let mean_handle = mean(&handled);
    let calls_per_second = offered as f64 / arrivals.as_secs_f64().max(1e-9);
    let in_line: Vec<f64> = answered.iter().filter_map(|c| c.queue_wait).collect();
    let share = |holds: &dyn Fn(f64) -> bool| {
        if in_line.is_empty() {
            0.0
        } else {
            in_line.iter().filter(|w| holds(**w)).count() as f64 / in_line.len() as f64
        }
    };
    let erlang_c = (queues == 1 && options.patience.is_none())
        .then(|| erlang_c(agents, calls_per_second, mean_handle, threshold))
        .flatten()
        .map(|(waits, service_level, asa)| ErlangC {
            probability_of_waiting: waits,
            service_level,
            asa_seconds: asa,
            // Offered in the batch it arrived in: no wait at all.
            measured_probability_of_waiting: share(&|w| w > 0.000_5),
            measured_service_level: share(&|w| w <= threshold),
            measured_asa_seconds: mean(&in_line),
        });
    let finished =
        (calls.len() as u64).saturating_sub(calls.iter().filter(|c| c.unfinished).count() as u64);
    Report {
        offered: finished,
        answered: answered.len() as u64,
        abandoned: abandoned.len() as u64,
        service_level: if held_against > 0.0 {
            within / held_against
        } else {
            0.0
        },
        asa_seconds: mean(&waits),
        abandon_rate: if finished > 0 {
            abandoned.len() as f64 / finished as f64
        } else {
            0.0
        },
        occupancy: busy / (agents as f64 * elapsed.as_secs_f64().max(1e-9)),
        ewt_mean_abs_error_seconds: mean(&errors),
        ewt_bias: if mean_wait > 0.0 {
            (mean_estimate - mean_wait) / mean_wait
        } else {
            0.0
        },
        unfinished: calls.iter().filter(|c| c.unfinished).count() as u64,
        agents,
        queues,
        duration_seconds: elapsed.as_secs_f64(),
        calls_per_second,
        mean_handle_seconds: mean_handle,
        mean_queue_wait_seconds: mean(&in_line),
        erlang_c,
        server,
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let percent = |value: f64| format!("{:.1} %", value * 100.0);
        writeln!(
            f,
            "simulated {:.0} s: {} agents, {} queue(s), {:.2} calls/s",
            self.duration_seconds, self.agents, self.queues, self.calls_per_second
        )?;
        writeln!(f, "  offered          {}", self.offered)?;
        writeln!(f, "  answered         {}", self.answered)?;
        writeln!(
            f,
            "  abandoned        {} ({} abandon rate)",
            self.abandoned,
            percent(self.abandon_rate)
        )?;
        writeln!(f, "  service level    {}", percent(self.service_level))?;
        writeln!(f, "  ASA              {:.2} s", self.asa_seconds)?;
        writeln!(f, "  occupancy        {}", percent(self.occupancy))?;
        writeln!(
            f,
            "  handle time      {:.2} s (offer to end of wrap-up)",
            self.mean_handle_seconds
        )?;
        writeln!(
            f,
            "  EWT error        {:.2} s mean absolute, {:+.1} % bias",
            self.ewt_mean_abs_error_seconds,
            self.ewt_bias * 100.0
        )?;
        if self.unfinished > 0 {
            writeln!(
                f,
                "  still waiting    {} at the end (hung up, not counted)",
                self.unfinished
            )?;
        }
        if let Some(erlang) = &self.erlang_c {
            writeln!(
                f,
                "  Erlang C         P(wait) {}, service level {}, ASA {:.2} s",
                percent(erlang.probability_of_waiting),
                percent(erlang.service_level),
                erlang.asa_seconds
            )?;
            writeln!(
                f,
                "    measured       P(wait) {}, service level {}, ASA {:.2} s (time in line until offered)",
                percent(erlang.measured_probability_of_waiting),
                percent(erlang.measured_service_level),
                erlang.measured_asa_seconds
            )?;
        }
        let server = &self.server;
        write!(
            f,
            "  routing says     offered {}, answered {}, abandoned {}, service level {}, ASA {}",
            server.offered,
            server.answered,
            server.abandoned,
            server.service_level.map_or("-".into(), percent),
            server
                .asa_seconds
                .map_or("-".into(), |asa| format!("{asa:.2} s")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_the_textbook() {
        // 10 agents, 8 Erlangs: P(wait) = 0.4092 (standard tables).
        let waits = erlang_c_wait_probability(10, 8.0).unwrap_or_default();
        assert!((waits - 0.4092).abs() < 1e-3, "{waits}");
        // 20 agents, 180 s handle time, 360 calls an hour: 18 Erlangs.
        let (waits, service_level, asa) = erlang_c(20, 0.1, 180.0, 20.0).unwrap_or_default();
        assert!((waits - 0.5508).abs() < 1e-3, "{waits}");
        assert!((asa - waits * 180.0 / 2.0).abs() < 1e-9);
        assert!((0.0..1.0).contains(&service_level));
        assert!(
            erlang_c_wait_probability(5, 5.0).is_none(),
            "at capacity the queue grows without bound"
        );
    }
}
