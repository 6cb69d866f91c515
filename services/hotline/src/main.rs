//! `hotline`: runs any set of Hotline services in one process.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand};
use hotline::{Config, Target};
use hotline_kit::telemetry::Telemetry;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "hotline",
    version,
    about = "Hotline: the customer-service platform for call centers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs services: all of them on embedded storage by default.
    Serve(ServeArgs),
    /// Applies pending database migrations of the selected services, then exits.
    Migrate(CommonArgs),
    /// Prints the effective configuration (defaults, file, environment), secrets redacted.
    Config(CommonArgs),
    /// Works on the event bus: dead letters and unroutable events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Manages the key that encrypts personal data at rest (identity.pii_key).
    #[command(subcommand)]
    Pii(PiiCommand),
    /// Drives a simulated call center against a running suite through its
    /// public APIs, and prints what its callers and agents saw.
    Simulate(SimulateArgs),
}

#[derive(Args)]
struct SimulateArgs {
    /// The suite's REST address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An API client that may configure queues and agents and act as the
    /// switch (admin, or supervisor + service). Without it (and without the
    /// variable), the one in --credentials-file.
    #[arg(long, env = "HOTLINE_BOOTSTRAP_CLIENT_ID")]
    client_id: Option<String>,
    #[arg(long, env = "HOTLINE_BOOTSTRAP_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// The bootstrap admin file the embedded default writes at first start.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "./data/bootstrap-admin.env"
    )]
    credentials_file: PathBuf,
    /// Simulated agents, signed in for the run.
    #[arg(long, default_value_t = 20)]
    agents: usize,
    /// Queues the agents are spread over (calls pick one at random).
    #[arg(long, default_value_t = 1)]
    queues: usize,
    /// Mean arrival rate (Poisson).
    #[arg(long, default_value_t = 2.0)]
    calls_per_second: f64,
    /// Mean talk time.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    handle_time: std::time::Duration,
    #[arg(long, value_enum, default_value = "exponential")]
    handle_time_dist: hotline::simulate::HandleTimeDistribution,
    /// After-call work per call.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    wrap_up: std::time::Duration,
    /// Mean patience of callers (exponential), or "none": nobody abandons.
    #[arg(long, default_value = "60s")]
    patience: String,
    /// Service-level threshold.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    sl_threshold: std::time::Duration,
    /// How long calls keep arriving.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    duration: std::time::Duration,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Lists, replays or drops the events consumers gave up on (and those no
    /// queue was bound for, shown as "(unroutable)"). With the embedded bus,
    /// stop `hotline serve` first: it keeps them in <data-dir>/bus.spool.
    DeadLetters(DeadLetterArgs),
}

#[derive(Args)]
struct DeadLetterArgs {
    #[arg(value_enum)]
    action: DeadLetterVerb,
    /// Only the letters of this queue (e.g. identity.timeline, or "(unroutable)").
    #[arg(long)]
    queue: Option<String>,
    /// Only these events (repeatable).
    #[arg(long = "id", value_name = "EVENT_ID")]
    ids: Vec<uuid::Uuid>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DeadLetterVerb {
    /// Show them; they stay.
    List,
    /// Hand them back to the queue they failed in.
    Replay,
    /// Delete them.
    Drop,
}

#[derive(Subcommand)]
enum PiiCommand {
    /// Re-encrypts every value (ID numbers, signing keys) under identity.pii_key,
    /// so the keys in identity.pii_previous_keys can be removed. Safe while
    /// identity serves; run it again to resume.
    RotateKey(RotateKeyArgs),
}

#[derive(Args)]
struct RotateKeyArgs {
    /// A TOML file overriding the defaults (environment variables override it in turn).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where embedded SQLite files and generated keys live.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Rows re-encrypted per transaction.
    #[arg(long, value_name = "ROWS", default_value_t = 500)]
    batch_size: u64,
}

#[derive(Args)]
struct CommonArgs {
    /// Services to run, comma-separated.
    #[arg(
        long,
        env = "HOTLINE_TARGET",
        value_delimiter = ',',
        default_value = "all"
    )]
    target: Vec<Target>,
    /// A TOML file overriding the defaults (environment variables override it in turn).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where embedded SQLite files and generated keys live.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// REST address (overrides server.http_addr).
    #[arg(long, value_name = "ADDR")]
    http_addr: Option<SocketAddr>,
    /// gRPC address (overrides server.grpc_addr).
    #[arg(long, value_name = "ADDR")]
    grpc_addr: Option<SocketAddr>,
}

fn load(common: &CommonArgs) -> Result<Config, String> {
    load_from(common.config.as_deref(), common.data_dir.as_ref())
}

fn load_from(file: Option<&Path>, data_dir: Option<&PathBuf>) -> Result<Config, String> {
    let mut config = Config::load(file).map_err(|e| e.to_string())?;
    if let Some(dir) = data_dir {
        config.data_dir.clone_from(dir);
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    // One process-wide TLS provider, so no dependency can pick a second one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Config(args) => print_config(&args),
        Command::Events(EventsCommand::DeadLetters(args)) => dead_letters(args).await,
        Command::Pii(PiiCommand::RotateKey(args)) => rotate_pii_key(args).await,
        Command::Simulate(args) => simulate(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hotline: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_config(args: &CommonArgs) -> Result<(), String> {
    let config = load(args)?;
    let text = toml::to_string_pretty(&config).map_err(|e| e.to_string())?;
    print!("{text}");
    Ok(())
}

async fn dead_letters(args: DeadLetterArgs) -> Result<(), String> {
    use hotline_kit::bus::{DeadLetterAction, DeadLetterFilter};
    let config = load(&args.common)?;
    let action = match args.action {
        DeadLetterVerb::List => DeadLetterAction::List,
        DeadLetterVerb::Replay => DeadLetterAction::Replay,
        DeadLetterVerb::Drop => DeadLetterAction::Drop,
    };
    let filter = DeadLetterFilter {
        queue: args.queue,
        ids: args.ids,
    };
    let letters = hotline::dead_letters(&config, action, &filter)
        .await
        .map_err(|e| format!("{e:#}"))?;
    for letter in &letters {
        if args.json {
            println!(
                "{}",
                serde_json::to_string(letter).map_err(|e| e.to_string())?
            );
        } else {
            println!(
                "{}  {}  {}  {}  {}",
                letter.event.id,
                letter.queue,
                letter.event.kind,
                letter
                    .failed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                letter.error
            );
        }
    }
    let verb = match args.action {
        DeadLetterVerb::List => "listed",
        DeadLetterVerb::Replay => "replayed",
        DeadLetterVerb::Drop => "dropped",
    };
    eprintln!("{} dead letters {verb}", letters.len());
    Ok(())
}

async fn simulate(args: SimulateArgs) -> Result<(), String> {
    let patience = match args.patience.as_str() {
        "none" => None,
        text => Some(humantime::parse_duration(text).map_err(|e| format!("--patience: {e}"))?),
    };
    let (client_id, client_secret) = match (args.client_id, args.client_secret) {
        (Some(id), Some(secret)) => (id, secret),
        _ => credentials_from(&args.credentials_file)?,
    };
    let options = hotline::simulate::Options {
        server: args.server,
        client_id,
        client_secret,
        agents: args.agents,
        queues: args.queues,
        calls_per_second: args.calls_per_second,
        handle_time: args.handle_time,
        handle_time_dist: args.handle_time_dist,
        wrap_up: args.wrap_up,
        patience,
        sl_threshold: args.sl_threshold,
        duration: args.duration,
        seed: args.seed,
    };
    let report = hotline::simulate::run(options)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!("{report}");
    }
    Ok(())
}

/// The id and secret in a `bootstrap-admin.env` file.
fn credentials_from(file: &Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "no --client-id/--client-secret, no HOTLINE_BOOTSTRAP_CLIENT_* variables, and {}: {e}",
            file.display()
        )
    })?;
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix('='))
            .map(|value| value.trim().to_owned())
            .ok_or_else(|| format!("{} has no {name}", file.display()))
    };
    Ok((
        value("HOTLINE_BOOTSTRAP_CLIENT_ID")?,
        value("HOTLINE_BOOTSTRAP_CLIENT_SECRET")?,
    ))
}

async fn migrate(args: CommonArgs) -> Result<(), String> {
    let config = load(&args)?;
    let telemetry = init_telemetry(&config, &args.target)?;
    let result = hotline::migrate(&config, &args.target)
        .await
        .map_err(|e| format!("{e:#}"));
    telemetry.shutdown().await;
    result
}

async fn rotate_pii_key(args: RotateKeyArgs) -> Result<(), String> {
    let config = load_from(args.config.as_deref(), args.data_dir.as_ref())?;
    let telemetry = init_telemetry(&config, &[Target::Identity])?;
    let result = hotline::rotate_pii_key(&config, args.batch_size)
        .await
        .map_err(|e| format!("{e:#}"));
    telemetry.shutdown().await;
    let report = result?;
    println!(
        "re-encrypted under PII key {}: {} ID numbers, {} signing keys",
        report.key_id, report.id_numbers, report.signing_keys
    );
    if report.remaining > 0 {
        return Err(format!(
            "{} values are still under other keys: check that every replica runs with this \
             identity.pii_key, then run this again (the log names values no configured key decrypts)",
            report.remaining
        ));
    }
    println!(
        "every value is under key {}: identity.pii_previous_keys can be emptied",
        report.key_id
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let mut config = load(&args.common)?;
    if let Some(addr) = args.http_addr {
        config.server.http_addr = addr;
    }
    if let Some(addr) = args.grpc_addr {
        config.server.grpc_addr = addr;
    }
    let services = Target::expand(&args.common.target);
    let split = services.len() < Target::expand(&[Target::All]).len();
    let problems = config.validate_for(split);
    if !problems.is_empty() {
        return Err(format!(
            "invalid configuration:\n  - {}",
            problems.join("\n  - ")
        ));
    }
    let telemetry = init_telemetry(&config, &args.common.target)?;
    let signals = StopSignals::install()?;
    let shutdown = CancellationToken::new();
    let started = match hotline::start(&config, &args.common.target, shutdown.clone()).await {
        Ok(started) => started,
        Err(error) => {
            telemetry.shutdown().await;
            return Err(format!("{error:#}"));
        }
    };
    welcome(&config, &started, &services);
    tokio::spawn(async move {
        signals.received().await;
        tracing::info!("signal received");
        shutdown.cancel();
    });
    let result = started.running.wait().await.map_err(|e| format!("{e:#}"));
    // After every consumer and relay stopped: the embedded bus spools what it holds.
    started.platform.bus.close().await;
    telemetry.shutdown().await;
    result
}

fn init_telemetry(config: &Config, targets: &[Target]) -> Result<Telemetry, String> {
    let service = hotline::service_name(config, targets);
    Telemetry::init(&config.telemetry, &service, hotline::VERSION).map_err(|e| e.to_string())
}

fn welcome(config: &Config, started: &hotline::Started, services: &[Target]) {
    let http = started.running.http_addr;
    let grpc = started.running.grpc_addr;
    let names: Vec<String> = services
        .iter()
        .map(|s| format!("{s:?}").to_lowercase())
        .collect();
    println!();
    println!("Hotline is running: {}", names.join(", "));
    println!("  API docs     http://{http}/docs/");
    println!("  OpenAPI      http://{http}/openapi.json");
    println!("  gRPC         {grpc} (reflection on: grpcurl -plaintext {grpc} list)");
    if config.database.url.is_empty() {
        println!("  data         {} (SQLite)", config.data_dir.display());
    }
    let token_command = |credentials: &str| {
        format!(
            "{credentials}curl -s -u \"$HOTLINE_BOOTSTRAP_CLIENT_ID:$HOTLINE_BOOTSTRAP_CLIENT_SECRET\" -d grant_type=client_credentials http://{http}/oauth/token"
        )
    };
    println!();
    // Never the secret itself: stdout ends up in log collectors.
    match &started.bootstrap_admin {
        Some(admin) => {
            let file = admin.credentials_file.display();
            println!(
                "A bootstrap admin client was created: {}. Its id and secret are in",
                admin.client_id
            );
            println!("  {file} (readable only by you). Get a token:");
            println!("  ({})", token_command(&format!(". '{file}' && ")));
        }
        None if !config.bootstrap_client_id.is_empty() => {
            println!(
                "Get a token with the bootstrap client from HOTLINE_BOOTSTRAP_CLIENT_ID/SECRET:"
            );
            println!("  {}", token_command(""));
        }
        None => {
            if config.database.url.is_empty() {
                println!(
                    "The bootstrap admin client was written at first start to {}.",
                    config
                        .data_dir
                        .join(hotline_identity::component::BOOTSTRAP_CREDENTIALS_FILE)
                        .display()
                );
            }
            println!(
                "Lost it? Set HOTLINE_BOOTSTRAP_CLIENT_ID and HOTLINE_BOOTSTRAP_CLIENT_SECRET and restart."
            );
        }
    }
    println!();
}

/// SIGTERM and SIGINT, listened to from before the welcome text is printed, so
/// a signal sent right after start is a graceful stop, not a kill.
#[cfg(unix)]
struct StopSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    fn install() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind| signal(kind).map_err(|e| format!("installing signal handlers: {e}"));
        Ok(Self {
            terminate: listen(SignalKind::terminate())?,
            interrupt: listen(SignalKind::interrupt())?,
        })
    }

    async fn received(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    fn install() -> Result<Self, String> {
        Ok(Self)
    }

    async fn received(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
