//! Child processes of the tests: killed and reaped when dropped, and the
//! service's binary started on a free port.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process of a test, killed and reaped when dropped (a `Child` is
/// not), so a failing test leaves no process behind.
pub struct Process(pub Child);

impl Process {
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        command.spawn().map(Self)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, …).
    pub fn signal(&self, name: &str) {
        let pid = self.id().to_string();
        let status = Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap();
        assert!(status.success(), "`kill -{name} {pid}` failed with {status}");
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().expect("the child's status")
    }

    /// Waits up to `deadline` for it to exit; `None` if it is still running.
    pub fn wait_for_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if started.elapsed() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `tributary serve` as a process on a free port, with only `envs` (plus the
/// port) in its environment and its stderr sent to `log` (a file, or a pipe
/// the caller drains). Returns once it listens.
pub fn start_binary(envs: &[(&str, &str)], log: impl Into<Stdio>) -> (Process, u16) {
    let port = free_port();
    let mut process = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("serve")
            .env_clear()
            .env("TRIBUTARY_LISTEN", format!("127.0.0.1:{port}"))
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(log),
    )
    .expect("cannot start tributary");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(process.exited().is_none(), "tributary exited at start");
        assert!(Instant::now() < deadline, "tributary did not listen within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    (process, port)
}
