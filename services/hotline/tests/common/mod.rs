//! Running the `hotline` binary in tests: a clean environment, a server on
//! free ports with its welcome text read, and a graceful stop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

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
    pub lines: Vec<String>,
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
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    let mut lines = Vec::new();
    let mut http = String::new();
    let mut stdout = BufReader::new(stdout).lines();
    for line in stdout.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("API docs") {
            http = url.trim().trim_end_matches("/docs/").to_owned();
        }
        let done = line.contains("/oauth/token") || line.starts_with("Lost it?");
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(!http.is_empty(), "no address in {lines:?}");
    std::thread::spawn(move || for _ in stdout {});
    Server { child, http, lines }
}

impl Server {
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
