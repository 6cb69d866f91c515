//! Running the `hotline` binary in tests: a clean environment, a server on
//! free ports with its welcome text read, and a graceful stop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hotline_testkit::Infra;
use serde_json::Value;

pub const BINARY: &str = env!("CARGO_BIN_EXE_hotline");

pub fn hotline(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args);
    // A clean environment for configuration: only what each test sets.
    for (name, _) in std::env::vars() {
        if name.starts_with("HOTLINE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

pub struct Server {
    pub child: Child,
    pub http: String,
    /// The gRPC address, as `http://host:port`.
    pub grpc: String,
    /// The welcome text.
    pub lines: Vec<String>,
    /// Reads stderr (the logs) to its end; see `logs`.
    stderr: Option<std::thread::JoinHandle<Vec<String>>>,
}

/// Starts `hotline serve` on free ports and reads its welcome text.
pub fn serve(dir: &std::path::Path, extra_env: &[(&str, &str)]) -> Server {
    let mut command = hotline(&[
        "serve",
        "--data-dir",
        dir.to_str().unwrap(),
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
    ]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    // Logs go to stderr; keep draining it so the server never blocks on a full pipe.
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect()
    });
    let mut lines = Vec::new();
    let mut http = String::new();
    let mut grpc = String::new();
    let mut stdout = BufReader::new(stdout).lines();
    for line in stdout.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("API docs") {
            http = url.trim().trim_end_matches("/docs/").to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("gRPC") {
            grpc = format!(
                "http://{}",
                rest.split_whitespace().next().unwrap_or_default()
            );
        }
        let done = line.contains("/oauth/token") || line.starts_with("Lost it?");
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(!http.is_empty(), "no address in {lines:?}");
    std::thread::spawn(move || for _ in stdout {});
    Server {
        child,
        http,
        grpc,
        lines,
        stderr: Some(stderr),
    }
}

impl Server {
    /// Every log line the process wrote; call after it stopped.
    pub fn logs(&mut self) -> Vec<String> {
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap())
            .unwrap_or_default()
    }

    /// SIGTERM, then a clean exit.
    pub fn stop(&mut self) {
        sigterm(&self.child);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit 0 after SIGTERM: {status}");
    }
}

pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// One `hotline serve --target <target>` on fixed ports, so a restart comes
/// back where clients expect it.
pub struct Replica {
    pub http: String,
    pub grpc: String,
    target: String,
    env: Vec<(String, String)>,
    pub child: Option<Child>,
}

impl Replica {
    /// A replica of `target` on the run's backends, with `extra` settings.
    pub fn new(infra: &Infra, target: &str, extra: &[(&str, &str)]) -> Self {
        // Below the kernel's ephemeral range, so no other test's connection can
        // take the port while the replica is down between a stop and a start.
        static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
        let free = || loop {
            let port = 20_000 + rand::random::<u16>() % 10_000;
            let mut taken = TAKEN.lock().unwrap();
            if !taken.contains(&port)
                && let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port))
            {
                taken.push(port);
                return listener.local_addr().unwrap();
            }
        };
        let (http, grpc) = (free(), free());
        let mut env = infra.process_env();
        env.extend(
            [
                ("HOTLINE_SERVER__HTTP_ADDR", http.to_string()),
                ("HOTLINE_SERVER__GRPC_ADDR", grpc.to_string()),
                ("HOTLINE_SERVER__SHUTDOWN_DELAY", "1s".into()),
                (
                    "HOTLINE_IDENTITY__PII_KEY",
                    "YmVuY2gtb25seS1rZXktMzItYnl0ZXMtZm9yLXRlc3Q=".into(),
                ),
                ("HOTLINE_TELEMETRY__LEVEL", "warn".into()),
            ]
            .into_iter()
            .chain(
                extra
                    .iter()
                    .map(|(name, value)| (*name, (*value).to_owned())),
            )
            .map(|(name, value)| (name.to_owned(), value)),
        );
        Self {
            http: format!("http://{http}"),
            grpc: format!("http://{grpc}"),
            target: target.to_owned(),
            env,
            child: None,
        }
    }

    /// Where this replica's warnings go, across its restarts.
    pub fn log(&self, data_dir: &std::path::Path) -> std::path::PathBuf {
        data_dir.join(format!(
            "{}.log",
            self.http.trim_start_matches("http://").replace(':', "-")
        ))
    }

    pub fn start(&mut self, data_dir: &std::path::Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(data_dir))
            .unwrap();
        let mut command = hotline(&["serve", "--target", &self.target, "--data-dir"]);
        command.arg(data_dir).stdout(Stdio::null()).stderr(log);
        command.envs(self.env.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        self.child = Some(command.spawn().unwrap());
    }

    /// SIGKILL: the process dies mid-work, as on a node failure.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then a clean exit (waited for off the runtime's threads).
    pub async fn stop(&mut self) {
        let child = self.child.take().expect("running");
        tokio::task::spawn_blocking(move || terminate(child))
            .await
            .unwrap();
    }
}

fn terminate(mut child: Child) {
    sigterm(&child);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit 0 after SIGTERM: {exit}");
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn is_ready(client: &reqwest::Client, replica: &Replica) -> bool {
    client
        .get(format!("{}/readyz", replica.http))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

pub async fn wait_ready(
    client: &reqwest::Client,
    replica: &mut Replica,
    data_dir: &std::path::Path,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !is_ready(client, replica).await {
        let exited = replica
            .child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten());
        if exited.is_some() || Instant::now() > deadline {
            let log = std::fs::read_to_string(replica.log(data_dir)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "{} never became ready ({exited:?}); its log ends:\n{}",
                replica.http,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends to the replicas in turn, moving on from one that refuses connections
/// and waiting out a 503 (a takeover in progress), as a load balancer and a
/// patient client would.
pub struct Clients {
    pub replicas: Vec<String>,
    pub http: reqwest::Client,
    pub token: String,
    pub next: AtomicUsize,
    pub retries: AtomicU64,
}

impl Clients {
    pub fn new(replicas: Vec<String>, token: String) -> Self {
        Self {
            replicas,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            token,
            next: AtomicUsize::new(0),
            retries: AtomicU64::new(0),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.send_keyed(method, path, body, None).await
    }

    /// [`Self::send`] with an `Idempotency-Key`, so a retry after a lost
    /// answer doesn't do it twice.
    pub async fn send_keyed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let replica =
                &self.replicas[self.next.fetch_add(1, Ordering::Relaxed) % self.replicas.len()];
            let mut request = self
                .http
                .request(method.clone(), format!("{replica}{path}"))
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(15));
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            match request.send().await {
                Ok(response) if response.status() != 503 => {
                    let status = response.status().as_u16();
                    return (status, response.json().await.unwrap_or(Value::Null));
                }
                Ok(_) | Err(_) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    assert!(
                        Instant::now() < deadline,
                        "{method} {path}: no replica answered for 30 s"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}
