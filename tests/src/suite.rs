//! The benchmarks' suite: `hotline serve` processes built beside them (release),
//! on the run's backends, and pgbench's reference figure from the same run.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

use crate::ADMIN;

/// `hotline` built beside this benchmark (`cargo build --release -p hotline`).
fn binary() -> anyhow::Result<std::path::PathBuf> {
    let path = std::env::current_exe()?
        .parent()
        .context("no directory")?
        .join("hotline");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: cargo build --release -p hotline",
        path.display()
    );
    Ok(path)
}

/// The key every benchmark process encrypts personal data with (benchmark data only).
pub const PII_KEY: &str = "YmVuY2gtb25seS1rZXktMzItYnl0ZXMtZm9yLXRlc3Q=";

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub struct Server {
    child: Child,
    pub http: String,
    pub grpc: String,
}

impl Server {
    pub fn start(
        targets: &str,
        data_dir: &std::path::Path,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let (http, grpc) = (free_port()?, free_port()?);
        let mut command = Command::new(binary()?);
        command
            .args(["serve", "--target", targets, "--data-dir"])
            .arg(data_dir)
            .args([
                "--http-addr",
                &format!("127.0.0.1:{http}"),
                "--grpc-addr",
                &format!("127.0.0.1:{grpc}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, _) in std::env::vars() {
            if name.starts_with("HOTLINE_") {
                command.env_remove(name);
            }
        }
        command
            .env("HOTLINE_BOOTSTRAP_CLIENT_ID", ADMIN.0)
            .env("HOTLINE_BOOTSTRAP_CLIENT_SECRET", ADMIN.1)
            .env("HOTLINE_IDENTITY__PII_KEY", PII_KEY)
            .env("HOTLINE_TELEMETRY__LEVEL", "warn")
            .envs(env.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        Ok(Self {
            child: command.spawn()?,
            http: format!("http://127.0.0.1:{http}"),
            grpc: format!("http://127.0.0.1:{grpc}"),
        })
    }

    pub async fn ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(format!("{}/readyz", self.http)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("{} exited: {status}", self.http);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} never became ready",
                self.http
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// pgbench's single-row insert commits per second with 16 clients, in a schema of its own.
pub fn pgbench(database_url: &str, run: &str) -> anyhow::Result<f64> {
    let url = reqwest::Url::parse(database_url)?;
    let (host, port, user) = (
        url.host_str().unwrap_or("127.0.0.1").to_owned(),
        url.port().unwrap_or(5432).to_string(),
        if url.username().is_empty() {
            "postgres".to_owned()
        } else {
            url.username().to_owned()
        },
    );
    let database = url.path().trim_start_matches('/').to_owned();
    let schema = format!("{run}_pgbench");
    let psql = |sql: &str| -> anyhow::Result<()> {
        let status = Command::new("psql")
            .args([
                "-q", "-h", &host, "-p", &port, "-U", &user, "-d", &database, "-c", sql,
            ])
            .envs(url.password().map(|p| ("PGPASSWORD", p.to_owned())))
            .stdout(Stdio::null())
            .status()
            .context("psql (PostgreSQL's client) is needed")?;
        anyhow::ensure!(status.success(), "psql failed: {sql}");
        Ok(())
    };
    psql(&format!(
        "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".t (id bigserial PRIMARY KEY, v int, at timestamptz DEFAULT now())"
    ))?;
    let script = std::env::temp_dir().join(format!("{schema}.sql"));
    std::fs::write(
        &script,
        format!("INSERT INTO \"{schema}\".t (v) VALUES (1);\n"),
    )?;
    let output = Command::new("pgbench")
        .args([
            "-n", "-c", "16", "-j", "2", "-T", "10", "-h", &host, "-p", &port, "-U", &user, "-f",
        ])
        .arg(&script)
        .arg(&database)
        .envs(url.password().map(|p| ("PGPASSWORD", p.to_owned())))
        .output()
        .context("pgbench is needed (Debian: postgresql-contrib or postgresql-client)")?;
    let _ = std::fs::remove_file(&script);
    psql(&format!("DROP SCHEMA \"{schema}\" CASCADE"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .with_context(|| format!("no tps in pgbench's output: {text}"))
}

/// Identity and one ticketing replica started on `infra`'s backends, ready,
/// with the bootstrap admin's token.
pub struct TicketingSuite {
    pub identity: Server,
    pub ticketing: Server,
    pub token: String,
}

impl TicketingSuite {
    /// Ticketing gets `settings` (`HOTLINE_…` variables) on top of the
    /// backends'; its events bound by `events` go to a stand-in queue, as
    /// reporting will consume them (until then they'd be unroutable).
    pub async fn start(
        infra: &hotline_testkit::Infra,
        client: &reqwest::Client,
        settings: &[(&str, String)],
        events: &str,
    ) -> anyhow::Result<Self> {
        let dir = infra.data_dir();
        let env = infra.process_env();
        let mut identity = Server::start("identity", &dir, &env)?;
        identity.ready(client).await?;
        let mut ticketing_env = env.clone();
        ticketing_env.push((
            "HOTLINE_PEERS__IDENTITY_GRPC".to_owned(),
            identity.grpc.clone(),
        ));
        ticketing_env.push((
            "HOTLINE_PEERS__IDENTITY_HTTP".to_owned(),
            identity.http.clone(),
        ));
        ticketing_env.extend(settings.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
        infra
            .bind_stand_in_queue("hotline.events", "bench.reporting", events, 1_000_000)
            .await
            .map_err(anyhow::Error::msg)?;
        let mut ticketing = Server::start("ticketing", &dir, &ticketing_env)?;
        ticketing.ready(client).await?;
        let token = crate::token(client, &identity.http, ADMIN.0, ADMIN.1).await?;
        Ok(Self {
            identity,
            ticketing,
            token,
        })
    }
}
