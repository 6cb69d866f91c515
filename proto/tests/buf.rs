//! The `.proto` files as buf sees them: its STANDARD lint rules pass, and
//! nothing the last release promised (`release.binpb`) is broken — with a
//! breaking change made on a copy to show the check bites.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use hotline_testkit::python_with;

fn proto_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// buf from the `buf-bin` wheel, installed beside the tests' interpreter.
fn buf() -> Option<PathBuf> {
    let python = PathBuf::from(python_with("buf_bin")?);
    let beside = python.with_file_name("buf");
    Some(if beside.is_file() {
        beside
    } else {
        "buf".into()
    })
}

fn run(buf: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(buf)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("buf runs")
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_contracts_pass_buf_lint() {
    let Some(buf) = buf() else { return };
    let lint = run(&buf, proto_dir(), &["lint"]);
    assert!(lint.status.success(), "buf lint:\n{}", said(&lint));
}

#[test]
fn the_contracts_break_nothing_the_last_release_promised() {
    let Some(buf) = buf() else { return };
    let against = ["breaking", "--against", "release.binpb"];
    let breaking = run(&buf, proto_dir(), &against);
    assert!(
        breaking.status.success(),
        "buf breaking against the last release (if the change is meant for a new \
         major version, it goes in a new package):\n{}",
        said(&breaking)
    );

    // Retyping a field of a released message is what the check is for.
    let copy = tempfile::tempdir().unwrap();
    for file in ["buf.yaml", "release.binpb"] {
        fs::copy(proto_dir().join(file), copy.path().join(file)).unwrap();
    }
    copy_tree(&proto_dir().join("hotline"), &copy.path().join("hotline"));
    let routing = copy.path().join("hotline/routing/v1/routing.proto");
    let text = fs::read_to_string(&routing).unwrap();
    let retyped = text.replacen("  string call_id = 1;", "  int64 call_id = 1;", 1);
    assert_ne!(
        text, retyped,
        "OfferCallRequest.call_id is where the test expects it"
    );
    fs::write(&routing, retyped).unwrap();
    let broken = run(&buf, copy.path(), &against);
    assert!(!broken.status.success(), "a retyped field went unnoticed");
    assert!(said(&broken).contains("call_id"), "{}", said(&broken));
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}
