//! The REST contract as client generators and API testers see it: the served
//! OpenAPI document is the committed `docs/api/openapi.json` (a contract change
//! is always a visible diff), an independent validator accepts it, and a
//! property-based tester (schemathesis) finds nothing the server does that the
//! document does not say, over every operation of every service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use hotline_system_tests::{ADMIN, in_process};
use hotline_testkit::{Infra, python_with};

/// Regenerates the committed document instead of comparing (`make openapi`).
const BLESS: &str = "HOTLINE_TEST_BLESS_OPENAPI";

fn committed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api/openapi.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_committed_one_and_valid() {
    let infra = Infra::embedded();
    let started = in_process::start(&infra).await.unwrap();
    let url = format!("http://{}/openapi.json", started.running.http_addr);
    let served: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    started.running.shutdown();
    started.running.wait().await.unwrap();

    let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(committed(), &text).unwrap();
    } else {
        let on_disk = std::fs::read_to_string(committed()).unwrap_or_default();
        assert!(
            on_disk == text,
            "the served OpenAPI document differs from docs/api/openapi.json: \
             run `make openapi` and commit the diff"
        );
    }

    let Some(python) = python_with("openapi_spec_validator") else {
        return;
    };
    let file = infra.data_dir().join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let output = Command::new(python)
        .args(["-m", "openapi_spec_validator", "--validation-errors", "all"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openapi-spec-validator refuses the document:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// schemathesis' checks over every operation, with a fixed seed: no 5xx, no
/// status, header, content type or body the document does not declare, every
/// request it forbids refused, every request it allows accepted (but for what
/// no schema can say, listed per operation in `schemathesis.toml`), 405 with
/// `Allow` for other methods, no operation open without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_the_document_does_not_say() {
    let Some(python) = python_with("schemathesis") else {
        return;
    };
    let infra = Infra::embedded();
    let started = in_process::start(&infra).await.unwrap();
    let base = format!("http://{}", started.running.http_addr);
    let client = reqwest::Client::new();
    let token = hotline_testkit::client_token(&client, &base, ADMIN.0, ADMIN.1).await;

    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut schemathesis = Command::new(python);
    schemathesis
        .arg("-m")
        .arg("schemathesis.cli")
        .arg("--config-file")
        .arg(tests.join("schemathesis.toml"))
        .args(["--no-color", "run"])
        .arg(format!("{base}/openapi.json"))
        .args(["--url", &base, "--checks", "all"])
        .args(["--max-examples", "10", "--workers", "1"])
        .arg("--report-dir")
        .arg(infra.data_dir().join("schemathesis"))
        .args(["-H", &format!("Authorization: Bearer {token}")]);
    let output = tokio::task::spawn_blocking(move || schemathesis.output())
        .await
        .unwrap()
        .unwrap();
    started.running.shutdown();
    started.running.wait().await.unwrap();
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
