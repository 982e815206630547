//! The scripts honour `CARGO_TARGET_DIR`, as the README promises: a script
//! that hard-codes `target/debug` fails at its end on a machine that builds
//! elsewhere (`scripts/schemathesis` once did). Cheap checks rather than a run
//! of `scripts/test` itself, which installs tools and takes many minutes.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What `target_dir` (scripts/lib.sh) prints with `CARGO_TARGET_DIR` set to
/// `value`, or unset.
fn target_dir(value: Option<&str>) -> String {
    let mut bash = Command::new("bash");
    bash.args(["-c", "source scripts/lib.sh && target_dir"]).current_dir(ROOT);
    match value {
        Some(value) => bash.env("CARGO_TARGET_DIR", value),
        None => bash.env_remove("CARGO_TARGET_DIR"),
    };
    let output = bash.output().expect("bash runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim_end().to_owned()
}

#[test]
fn the_scripts_target_directory_follows_cargo_target_dir() {
    assert_eq!(target_dir(None), format!("{ROOT}/target"));
    assert_eq!(target_dir(Some("/elsewhere/build")), "/elsewhere/build");
    assert_eq!(target_dir(Some("build")), format!("{ROOT}/build"), "relative to the repository");
}

#[test]
fn no_script_hard_codes_a_path_into_target() {
    let mut scripts: Vec<_> = std::fs::read_dir(Path::new(ROOT).join("scripts"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    scripts.extend(["bench/run", "bench/stream"].map(|script| Path::new(ROOT).join(script)));
    for script in scripts {
        let text = std::fs::read_to_string(&script).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or_default();
            assert!(
                !code.contains("target/debug") && !code.contains("target/release"),
                "{}:{}: use $(target_dir) from scripts/lib.sh instead: {line}",
                script.display(),
                number + 1
            );
        }
    }
}
