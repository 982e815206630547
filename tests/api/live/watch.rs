//! `tributary watch` against a live service: in a pseudo-terminal (through
//! `script`), where it redraws a table in place, and piped, where it prints a
//! line per event.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::{DEADLINE, Service};
use crate::common::{Process, eventually};

/// Collects a child's output in the background.
fn collect(mut out: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let shared = text.clone();
    std::thread::spawn(move || {
        let mut buffer = [0; 4096];
        while let Ok(n) = out.read(&mut buffer) {
            if n == 0 {
                break;
            }
            shared.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    text
}

async fn shows(output: &Arc<Mutex<String>>, needle: &str) {
    eventually(DEADLINE, needle, || async {
        output.lock().unwrap().contains(needle).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_watch_prints_a_line_per_event_as_values_change() {
    let service = Service::start(&[]);
    let url = service.url("");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .args(["watch", "car-1", "--url", &url])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut watch = Process::spawn(&mut command).unwrap();
    let output = collect(watch.0.stdout.take().unwrap());
    shows(&output, "snapshot").await;
    assert_eq!(service.write("car-1", "engine_rpm", 2345.0).await, 200);
    shows(&output, "2345").await;
    let text = output.lock().unwrap().clone();
    assert!(!text.contains('\x1b'), "no terminal codes when piped: {text:?}");
    let update = text.lines().find(|l| l.contains("2345")).unwrap();
    assert!(update.contains("update") && update.contains("engine_rpm"), "{update}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_in_a_terminal_redraws_a_table_in_place() {
    let service = Service::start(&[]);
    let watch_command =
        format!("{} watch car-1 --url {}", env!("CARGO_BIN_EXE_tributary"), service.url(""));
    // `script` runs the command in a pseudo-terminal and copies what it draws.
    let mut command = Command::new("script");
    command
        .args(["--quiet", "--flush", "--return", "--command", &watch_command, "/dev/null"])
        .env_clear()
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut watch = Process::spawn(&mut command).unwrap();
    let output = collect(watch.0.stdout.take().unwrap());
    shows(&output, "car-1").await;
    assert_eq!(service.write("car-1", "vehicle_speed", 87.5).await, 200);
    shows(&output, "87.5").await;
    assert_eq!(service.write("car-1", "vehicle_speed", 91.25).await, 200);
    shows(&output, "91.25").await;
    let text = output.lock().unwrap().clone();
    // Drawn in place: the cursor goes home for each drawing, and the table
    // names its columns and the unit.
    assert!(text.matches("\x1b[H").count() >= 2, "{text:?}");
    for column in ["SIGNAL", "CURRENT", "AVERAGE", "MIN", "MAX", "UNIT", "AGE", "km/h"] {
        assert!(text.contains(column), "no {column:?} in {text:?}");
    }
}
