//! Independent tools written in Python that tests check Hotline against
//! (`tests/requirements.txt`; `HOTLINE_TEST_PYTHON` names the interpreter).

use std::process::Command;

use crate::infra_required;

/// The interpreter that has `module`, or `None` (after saying so) when it
/// lacks it and the real tools are not required.
pub fn python_with(module: &str) -> Option<String> {
    let python = std::env::var("HOTLINE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    assert!(
        !infra_required(),
        "{python} has no {module} (pip install -r tests/requirements.txt; HOTLINE_TEST_PYTHON names the interpreter)"
    );
    eprintln!("{python} has no {module}: skipped");
    None
}
