//! Puts the source revision in the binary (`hotline_build_info{revision}`):
//! `GIT_REVISION` when set (an image build, whose context has no .git),
//! otherwise what git says, otherwise nothing.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_REVISION");
    let revision = std::env::var("GIT_REVISION")
        .ok()
        .filter(|revision| !revision.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_default();
    // Not HOTLINE_*: cargo also sets it when it runs the tests, and the
    // configuration refuses HOTLINE_ variables it doesn't know.
    println!("cargo:rustc-env=BUILT_FROM_REVISION={}", revision.trim());
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|text| !text.is_empty())
}

fn git_revision() -> Option<String> {
    let revision = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Built again when HEAD moves: a checkout, or a commit on the branch.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(revision)
}
