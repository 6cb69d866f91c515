//! `hotline simulate` against a running suite: its figures agree with what
//! routing's live statistics say, with Erlang C for the same traffic, and the
//! waits announced to callers come within ±20 % of the waits they then had.
//!
//! Tolerances: a discrete-event simulation of the same M/M/N queue, 200 runs of
//! each configuration, spread its measured figures by these standard
//! deviations: P(wait) ±0.05, service level ±0.04 and speed of answer ±45 %
//! (for the first run; queues are bursty), estimate bias ±7 % (the second).
//! The bounds below are about three of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::serve;
use serde_json::Value;

const ADMIN: [(&str, &str); 2] = [
    ("HOTLINE_BOOTSTRAP_CLIENT_ID", "simulate-admin"),
    (
        "HOTLINE_BOOTSTRAP_CLIENT_SECRET",
        "simulate-admin-secret-0123456789",
    ),
];

fn simulate(http: &str, args: &[&str]) -> Value {
    let output = common::hotline(&["simulate", "--json", "--server", http])
        .args(args)
        .envs(ADMIN)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn number(report: &Value, path: &[&str]) -> f64 {
    let mut value = report;
    for key in path {
        value = &value[key];
    }
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{path:?} in {report}"))
}

/// The simulator and routing count the same calls.
fn agrees_with_routing(report: &Value) {
    for key in ["offered", "answered", "abandoned"] {
        assert_eq!(report[key], report["server"][key], "{key}: {report}");
    }
    let asa = number(report, &["asa_seconds"]);
    let server_asa = number(report, &["server", "asa_seconds"]);
    assert!((asa - server_asa).abs() < 0.05 + asa * 0.1, "{report}");
}

#[test]
fn the_simulated_center_agrees_with_routing_and_with_erlang_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &ADMIN);

    // One queue, longest idle, no wrap-up, nobody abandoning: an M/M/N queue.
    let report = simulate(
        &server.http,
        &[
            "--agents",
            "10",
            "--calls-per-second",
            "18",
            "--handle-time",
            "400ms",
            "--patience",
            "none",
            "--sl-threshold",
            "200ms",
            "--duration",
            "90s",
            "--seed",
            "7",
        ],
    );
    agrees_with_routing(&report);
    assert_eq!(report["unfinished"], 0, "{report}");
    let erlang = &report["erlang_c"];
    let (expected, measured) = (
        number(erlang, &["probability_of_waiting"]),
        number(erlang, &["measured_probability_of_waiting"]),
    );
    assert!(
        (expected - measured).abs() <= 0.15,
        "P(wait): Erlang C {expected:.3}, measured {measured:.3}"
    );
    let (expected, measured) = (
        number(erlang, &["service_level"]),
        number(erlang, &["measured_service_level"]),
    );
    assert!(
        (expected - measured).abs() <= 0.12,
        "service level: Erlang C {expected:.3}, measured {measured:.3}"
    );
    let (expected, measured) = (
        number(erlang, &["asa_seconds"]),
        number(erlang, &["measured_asa_seconds"]),
    );
    assert!(
        measured >= expected * 0.4 && measured <= expected * 2.2,
        "speed of answer: Erlang C {expected:.3} s, measured {measured:.3} s"
    );

    // 85 % occupancy: what callers are told against what they then wait.
    let report = simulate(
        &server.http,
        &[
            "--agents",
            "20",
            "--calls-per-second",
            "17",
            "--handle-time",
            "1s",
            "--patience",
            "none",
            "--duration",
            "60s",
            "--seed",
            "11",
        ],
    );
    agrees_with_routing(&report);
    let occupancy = number(&report, &["occupancy"]);
    assert!((0.75..=0.97).contains(&occupancy), "occupancy {occupancy}");
    let bias = number(&report, &["ewt_bias"]);
    assert!(
        bias.abs() <= 0.2,
        "estimated waits off by {:+.1} % on average: {report}",
        bias * 100.0
    );
    assert!(
        number(&report, &["ewt_mean_abs_error_seconds"]) < 1.0,
        "{report}"
    );

    // Callers who give up are counted as routing counts them.
    let report = simulate(
        &server.http,
        &[
            "--agents",
            "4",
            "--calls-per-second",
            "5",
            "--handle-time",
            "1s",
            "--patience",
            "500ms",
            "--duration",
            "15s",
            "--seed",
            "13",
        ],
    );
    agrees_with_routing(&report);
    assert!(number(&report, &["abandoned"]) > 0.0, "{report}");
    server.stop();
}
