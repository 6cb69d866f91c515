//! The `hotline` binary as a newcomer and an operator use it: help, config,
//! migrate, serve, and a graceful stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Server, hotline, serve, sigterm};
use hotline_testkit::Infra;

#[test]
fn every_command_has_help() {
    let output = hotline(&["--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "config", "events", "pii"] {
        assert!(text.contains(command), "{text}");
    }
    let serve = hotline(&["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&serve.stdout);
    for flag in [
        "--target",
        "--http-addr",
        "--grpc-addr",
        "--data-dir",
        "--config",
    ] {
        assert!(text.contains(flag), "{text}");
    }
}

#[test]
fn config_prints_the_effective_settings_with_secrets_redacted() {
    let output = hotline(&["config"])
        .env(
            "HOTLINE_DATABASE__URL",
            "postgres://hotline:s3cr3t@db:5432/hotline",
        )
        .env(
            "HOTLINE_IDENTITY__PII_KEY",
            "YmVuY2gtb25seS1rZXktMzItYnl0ZXMtZm9yLXRlc3Q=",
        )
        .env(
            "HOTLINE_IDENTITY__PII_PREVIOUS_KEYS",
            "[\"cHJldmlvdXMta2V5LTMyLWJ5dGVzLWZvci10ZXN0cyE=\"]",
        )
        .env("HOTLINE_SERVER__HTTP_ADDR", "0.0.0.0:8081")
        .output()
        .unwrap();
    assert_succeeded(&output);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("http_addr = \"0.0.0.0:8081\""), "{text}");
    assert!(
        text.contains("postgres://hotline:[redacted]@db:5432/hotline"),
        "{text}"
    );
    assert!(
        text.contains("pii_previous_keys = [\"[redacted]\"]"),
        "{text}"
    );
    assert!(
        !text.contains("s3cr3t") && !text.contains("YmVuY2gt") && !text.contains("cHJldmlv"),
        "{text}"
    );
}

#[test]
fn numeric_smpp_credentials_from_the_environment_stay_text() {
    // SMSCs hand out numeric accounts and senders; the environment can't say
    // they are strings.
    let output = hotline(&["config"])
        .env("HOTLINE_TICKETING__SMS__PROVIDER", "smpp")
        .env("HOTLINE_TICKETING__SMS__SMPP__ADDRESS", "smpp://smsc:2775")
        .env("HOTLINE_TICKETING__SMS__SMPP__SYSTEM_ID", "0106900")
        .env("HOTLINE_TICKETING__SMS__SMPP__PASSWORD", "20261202")
        .env("HOTLINE_TICKETING__SMS__SMPP__SOURCE_ADDR", "10690000")
        .env("HOTLINE_TICKETING__SMS__HTTP__SENDER", "+8610690000")
        .output()
        .unwrap();
    assert_succeeded(&output);
    let text = String::from_utf8_lossy(&output.stdout);
    for line in [
        // A leading zero and a sign kept, not read as numbers.
        "system_id = \"0106900\"",
        "source_addr = \"10690000\"",
        "sender = \"+8610690000\"",
        "password = \"[redacted]\"",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert!(!text.contains("20261202"), "{text}");
}

#[test]
fn a_misspelt_setting_stops_the_start_with_a_message_naming_it() {
    let output = hotline(&["config"])
        .env("HOTLINE_SERVER__HTTP_ADR", "0.0.0.0:1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("http_adr"), "{text}");

    let output = hotline(&["config"])
        .env("HOTLINE_BUS__KIND", "amqp")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("bus.amqp_url"));
}

#[test]
fn migrate_creates_the_embedded_databases() {
    let dir = tempfile::tempdir().unwrap();
    let output = hotline(&["migrate", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_succeeded(&output);
    assert!(dir.path().join("identity.sqlite").exists());
}

fn assert_succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The generated bootstrap admin client, from the file the welcome text names.
fn bootstrap_credentials(server: &Server, dir: &std::path::Path) -> (String, String) {
    let file = dir.join("bootstrap-admin.env");
    assert!(
        server
            .lines
            .iter()
            .any(|line| line.contains(&file.display().to_string())),
        "the welcome text names {}: {:?}",
        file.display(),
        server.lines
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable only by its owner");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("{name} not in {}", file.display()))
            .to_owned()
    };
    let (id, secret) = (
        value("HOTLINE_BOOTSTRAP_CLIENT_ID"),
        value("HOTLINE_BOOTSTRAP_CLIENT_SECRET"),
    );
    assert!(secret.len() >= 40);
    let printed = server.lines.join("\n");
    assert!(
        !printed.contains(&secret),
        "the secret is never printed: {printed}"
    );
    (id, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_gets_credentials_a_token_and_finds_a_caller() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]);
    let (id, secret) = bootstrap_credentials(&server, dir.path());
    let client = reqwest::Client::new();
    let token = hotline_testkit::client_token(&client, &server.http, &id, &secret).await;
    let created = client
        .post(format!("{}/api/v1/customers", server.http))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "张伟", "phones": [{"number": "138 0013 8000"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let found: serde_json::Value = client
        .get(format!("{}/api/v1/customers/lookup", server.http))
        .query(&[("phone", "+86 138-0013-8000")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["candidates"][0]["customer"]["name"], "张伟");

    server.stop();

    // A second start keeps the data and says where the credentials went.
    let mut again = serve(dir.path(), &[]);
    assert!(
        again
            .lines
            .iter()
            .any(|line| line.contains("written at first start")),
        "{:?}",
        again.lines
    );
    again.stop();
}

/// Once any client exists, no admin is generated again: not even when every
/// admin is revoked (which a revoked admin's still-valid token can do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_every_admin_does_not_mint_a_new_one_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]);
    let (id, secret) = bootstrap_credentials(&server, dir.path());
    std::fs::remove_file(dir.path().join("bootstrap-admin.env")).unwrap();
    let client = reqwest::Client::new();
    let first = hotline_testkit::client_token(&client, &server.http, &id, &secret).await;
    let created: serde_json::Value = client
        .post(format!("{}/api/v1/clients", server.http))
        .bearer_auth(&first)
        .json(&serde_json::json!({"name": "second admin", "roles": ["admin"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second_id = created["client_id"].as_str().unwrap();
    let second = hotline_testkit::client_token(
        &client,
        &server.http,
        second_id,
        created["client_secret"].as_str().unwrap(),
    )
    .await;
    for (revoked, by) in [(id.as_str(), &second), (second_id, &first)] {
        let answer = client
            .delete(format!("{}/api/v1/clients/{revoked}", server.http))
            .bearer_auth(by)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    server.stop();

    let mut again = serve(dir.path(), &[]);
    assert!(
        !dir.path().join("bootstrap-admin.env").exists(),
        "no new admin: {:?}",
        again.lines
    );
    let clients: serde_json::Value = client
        .get(format!("{}/api/v1/clients", again.http))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clients["items"].as_array().unwrap().len(), 2, "{clients}");
    again.stop();
}

/// With PostgreSQL nothing is generated: the first admin comes from the
/// environment, or the start stops with a message saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgresql_the_bootstrap_admin_must_be_configured() {
    let Some(infra) = hotline_testkit::Infra::real().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}_", infra.run_id);
    let env = [
        ("HOTLINE_DATABASE__URL", infra.database_url.as_str()),
        ("HOTLINE_DATABASE__SCHEMA_PREFIX", prefix.as_str()),
        (
            "HOTLINE_IDENTITY__PII_KEY",
            "YmVuY2gtb25seS1rZXktMzItYnl0ZXMtZm9yLXRlc3Q=",
        ),
    ];
    let mut refused = hotline(&[
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
    ]);
    refused.envs(env);
    let output = refused.output().unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("HOTLINE_BOOTSTRAP_CLIENT_ID"), "{text}");
    assert!(!dir.path().join("bootstrap-admin.env").exists());

    let secret = "ops-admin-secret-0123456789";
    let mut configured: Vec<(&str, &str)> = env.to_vec();
    configured.extend([
        ("HOTLINE_BOOTSTRAP_CLIENT_ID", "ops-admin"),
        ("HOTLINE_BOOTSTRAP_CLIENT_SECRET", secret),
    ]);
    let mut server = serve(dir.path(), &configured);
    assert!(
        !server.lines.join("\n").contains(secret),
        "{:?}",
        server.lines
    );
    hotline_testkit::client_token(&reqwest::Client::new(), &server.http, "ops-admin", secret).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_readiness_fails_first_then_the_process_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(
        dir.path(),
        &[
            ("HOTLINE_SERVER__SHUTDOWN_DELAY", "2s"),
            ("HOTLINE_BOOTSTRAP_CLIENT_ID", "ops-admin"),
            (
                "HOTLINE_BOOTSTRAP_CLIENT_SECRET",
                "ops-admin-secret-0123456789",
            ),
        ],
    );
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/readyz", server.http))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    sigterm(&server.child);
    let mut saw_unready = false;
    for _ in 0..40 {
        match client.get(format!("{}/readyz", server.http)).send().await {
            Ok(response) if response.status() == 503 => {
                saw_unready = true;
                // Still alive and serving while Kubernetes takes it out of rotation.
                let live = client
                    .get(format!("{}/livez", server.http))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(live.status(), 200);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(saw_unready, "readiness never went 503");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// `hotline events dead-letters` on the embedded bus's spool: list, drop by id,
/// JSON out; refused while a server holds the spool, which keeps the letters
/// across its own restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_of_the_embedded_bus_are_listed_and_dropped_between_runs() {
    use hotline_kit::bus::{Bus, Event, MemoryBus, RetryPolicy};
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let kept = Event::new("reporting.nobody.listens", "/hotline/test", vec![1]);
    let dropped = Event::new("reporting.nobody.cares", "/hotline/test", vec![2]);
    {
        let bus = MemoryBus::with_spool(
            RetryPolicy::default(),
            &dir.path().join("bus.spool"),
            "hotline.events",
        )
        .unwrap();
        bus.publish(&kept).await.unwrap();
        bus.publish(&dropped).await.unwrap();
        bus.close().await;
    }
    let letters = |extra: &[&str]| {
        let mut args = vec!["events", "dead-letters"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--data-dir", data_dir]);
        hotline(&args).output().unwrap()
    };

    let listed = letters(&["list"]);
    assert_succeeded(&listed);
    let text = String::from_utf8_lossy(&listed.stdout);
    for event in [&kept, &dropped] {
        assert!(text.contains(&event.id.to_string()), "{text}");
    }
    assert!(text.contains("(unroutable)"), "{text}");

    let id = dropped.id.to_string();
    let output = letters(&["drop", "--id", &id]);
    assert_succeeded(&output);
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 dead letters dropped"));

    // A running server owns the spool: the command refuses rather than race it.
    let mut server = serve(
        dir.path(),
        &[
            ("HOTLINE_BOOTSTRAP_CLIENT_ID", "ops-admin"),
            (
                "HOTLINE_BOOTSTRAP_CLIENT_SECRET",
                "ops-admin-secret-0123456789",
            ),
        ],
    );
    let refused = letters(&["list"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("stop it first"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    server.stop();

    // The server took the letters back and spooled them again at its stop.
    let listed = letters(&["list", "--json"]);
    assert_succeeded(&listed);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["event"]["id"], kept.id.to_string());
    assert_eq!(lines[0]["queue"], "(unroutable)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_body_limit_is_enforced() {
    let limit = hotline::Config::load(None).unwrap().server.max_body_bytes;
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), ADMIN_ENV);
    let client = reqwest::Client::new();
    let token =
        hotline_testkit::client_token(&client, &server.http, ADMIN_ENV[0].1, ADMIN_ENV[1].1).await;
    let create = |padding: usize| {
        client
            .post(format!("{}/api/v1/customers", server.http))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": "x", "attributes": {"blob": "x".repeat(padding)}}))
            .send()
    };
    let over = create(limit).await.unwrap();
    assert_eq!(over.status(), 413, "a body over {limit} bytes");
    // Just under the limit (far over the tests' own 64 KiB): read, then refused
    // for what it says (attributes are limited to 8 KiB).
    let under = create(limit - 1024).await.unwrap();
    assert_eq!(under.status(), 422, "a body under {limit} bytes");
    server.stop();
}

const ADMIN_ENV: &[(&str, &str)] = &[
    ("HOTLINE_BOOTSTRAP_CLIENT_ID", "ops-admin"),
    (
        "HOTLINE_BOOTSTRAP_CLIENT_SECRET",
        "ops-admin-secret-0123456789",
    ),
];

/// The environment that points the binary at `infra`'s backends (the real ones
/// under this run's names), with the bootstrap admin.
fn backend_env(infra: &Infra) -> Vec<(String, String)> {
    let mut env = infra.process_env();
    env.extend(
        ADMIN_ENV
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    env
}

/// `backend_env` with `current` as the PII key and `previous` as the keys it replaced.
fn with_pii_keys(
    base: &[(String, String)],
    current: &str,
    previous: &[&str],
) -> Vec<(String, String)> {
    let mut env = base.to_vec();
    env.push(("HOTLINE_IDENTITY__PII_KEY".to_owned(), current.to_owned()));
    env.push((
        "HOTLINE_IDENTITY__PII_PREVIOUS_KEYS".to_owned(),
        serde_json::to_string(previous).unwrap(),
    ));
    env
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

fn stop(mut server: Server) {
    server.stop();
}

/// A client of a started server, as the bootstrap admin.
struct Admin {
    client: reqwest::Client,
    http: String,
    token: String,
}

impl Admin {
    /// Getting a token decrypts the signing key.
    async fn of(server: &Server) -> Self {
        let client = reqwest::Client::new();
        let token =
            hotline_testkit::client_token(&client, &server.http, ADMIN_ENV[0].1, ADMIN_ENV[1].1)
                .await;
        Self {
            client,
            http: server.http.clone(),
            token,
        }
    }

    async fn create(&self, phone: &str, id_number: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/customers", self.http))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({
                "name": "轮换测试",
                "phones": [{"number": phone}],
                "id_number": id_number,
            }))
            .send()
            .await
            .unwrap()
    }

    async fn id_number_of(&self, id: &str) -> serde_json::Value {
        let customer: serde_json::Value = self
            .client
            .get(format!("{}/api/v1/customers/{id}", self.http))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        customer["id_number"].clone()
    }

    async fn found_by_id_number(&self, id_number: &str) -> Vec<String> {
        let page: serde_json::Value = self
            .client
            .get(format!("{}/api/v1/customers", self.http))
            .query(&[("id_number", id_number)])
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|customer| customer["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Valid resident ID numbers (GB 11643 check characters).
const ID_NUMBERS: [&str; 4] = [
    "11010519491231002X",
    "110101199003070011",
    "310115198506120026",
    "440304197801010037",
];

async fn rotating_the_pii_key_keeps_every_value_readable_and_searchable(infra: Infra) {
    let dir = infra.data_dir();
    let base = backend_env(&infra);
    let key_a = hotline_identity::pii::PiiCipher::generate_key_base64().unwrap();
    let key_b = hotline_identity::pii::PiiCipher::generate_key_base64().unwrap();
    let rotate = |env: &[(String, String)]| {
        let mut command = hotline(&[
            "pii",
            "rotate-key",
            "--data-dir",
            dir.to_str().unwrap(),
            "--batch-size",
            "2",
        ]);
        command.envs(env.iter().map(|(name, value)| (name, value)));
        command
    };

    // Key A encrypts the signing key and three ID numbers.
    let under_a = with_pii_keys(&base, &key_a, &[]);
    let server = serve(&dir, &refs(&under_a));
    let admin = Admin::of(&server).await;
    let mut customers = Vec::new();
    for (index, id_number) in ID_NUMBERS[..3].iter().enumerate() {
        let created = admin.create(&format!("1390000000{index}"), id_number).await;
        assert_eq!(created.status(), 201);
        let created: serde_json::Value = created.json().await.unwrap();
        customers.push((created["id"].as_str().unwrap().to_owned(), *id_number));
    }
    stop(server);

    // B is the key now, A still reads: tokens, ID numbers and searches work
    // before anything was re-encrypted.
    let rotating = with_pii_keys(&base, &key_b, &[&key_a]);
    let server = serve(&dir, &refs(&rotating));
    let admin = Admin::of(&server).await;
    let (first, first_number) = &customers[0];
    assert_eq!(admin.id_number_of(first).await, *first_number);
    assert_eq!(
        admin.found_by_id_number(first_number).await,
        [first.as_str()]
    );
    let created = admin.create("13900000003", ID_NUMBERS[3]).await;
    let created: serde_json::Value = created.json().await.unwrap();
    customers.push((created["id"].as_str().unwrap().to_owned(), ID_NUMBERS[3]));

    // The rotation runs beside the serving process, which keeps writing.
    let writer = {
        let admin = Admin::of(&server).await;
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for index in 0..5 {
                let response = admin.create(&format!("1370000000{index}"), "").await;
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    };
    let output = rotate(&rotating).output().unwrap();
    assert_succeeded(&output);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("3 ID numbers, 1 signing keys"), "{report}");
    assert_eq!(writer.await.unwrap(), [201; 5], "served while rotating");
    // Nothing is left to do: a second run (or a resumed one) changes nothing.
    let output = rotate(&rotating).output().unwrap();
    assert_succeeded(&output);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("0 ID numbers, 0 signing keys"), "{report}");
    stop(server);

    // Key A is gone: everything still decrypts, and is found.
    let server = serve(&dir, &refs(&with_pii_keys(&base, &key_b, &[])));
    let admin = Admin::of(&server).await;
    for (id, id_number) in &customers {
        assert_eq!(admin.id_number_of(id).await, *id_number);
        assert_eq!(admin.found_by_id_number(id_number).await, [id.as_str()]);
    }
    stop(server);

    // Without the key that made a value, rotation refuses to call it done.
    let output = rotate(&with_pii_keys(&base, &key_a, &[])).output().unwrap();
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("still under other keys"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_rotating_the_pii_key_keeps_every_value_readable_and_searchable() {
    rotating_the_pii_key_keeps_every_value_readable_and_searchable(Infra::embedded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_rotating_the_pii_key_keeps_every_value_readable_and_searchable() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    rotating_the_pii_key_keeps_every_value_readable_and_searchable(infra).await;
}
