//! Running the binary the way the image would: as its user, with its
//! environment only, killed when dropped.

use super::*;

/// This build's binary where the image's user can run it. The target directory
/// may sit where only root can enter (under /root, say), so when the test runs
/// as root the binary is linked, or else copied, into a world-readable
/// temporary directory, much as the image keeps it in /usr/local/bin.
pub(super) struct ReachableBinary {
    pub(super) path: String,
    pub(super) _dir: Option<tempfile::TempDir>,
}

impl ReachableBinary {
    pub(super) fn new() -> Self {
        if !running_as_root() {
            return ReachableBinary { path: BINARY.to_owned(), _dir: None };
        }
        let dir = tempfile::tempdir().expect("a temporary directory for the binary");
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755))
            .expect("a world-readable temporary directory");
        let path = dir.path().join("tributary");
        std::fs::hard_link(BINARY, &path)
            .or_else(|_| std::fs::copy(BINARY, &path).map(drop))
            .unwrap_or_else(|e| panic!("cannot put {BINARY} into {}: {e}", dir.path().display()));
        ReachableBinary { path: path.display().to_string(), _dir: Some(dir) }
    }

    pub(super) fn path(&self) -> &str {
        &self.path
    }
}

/// A running `tributary serve`, killed when dropped so a failing test leaves
/// no process behind.
pub(super) struct Server {
    pub(super) process: Process,
    pub(super) log: tempfile::NamedTempFile,
}

impl Server {
    pub(super) fn start(argv: &[String], env: &[(String, String)], (uid, gid): (u32, u32)) -> Self {
        let log = tempfile::NamedTempFile::new().expect("a temporary file for the server's log");
        let mut command = image_command(argv, env, (uid, gid));
        command
            .stdout(log.reopen().expect("the log file"))
            .stderr(log.reopen().expect("the log file"));
        let process = Process::spawn(&mut command)
            .unwrap_or_else(|e| panic!("cannot start {argv:?} as uid {uid}: {e}"));
        Server { process, log }
    }

    pub(super) async fn wait_until_healthz_answers_200(&mut self, url: &str) {
        let client =
            reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(1)).build().unwrap();
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Some(status) = self.process.exited() {
                panic!(
                    "tributary exited with {status} before {url} answered. Its log:\n{}",
                    self.log()
                );
            }
            let last = match client.get(url).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => return,
                Ok(response) => format!("status {}", response.status()),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "{url} did not answer 200 within {STARTUP_DEADLINE:?} (last: {last}). The server's log:\n{}",
                self.log()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Checks the process's owner, where the test could switch to the image's
    /// user (it runs as root).
    pub(super) fn assert_runs_as(&self, uid: u32) {
        if running_as_root() {
            let owner = std::fs::metadata(format!("/proc/{}", self.process.id()))
                .expect("the server's /proc entry")
                .uid();
            assert_eq!(owner, uid, "the server runs as uid {owner}, not as the image's USER {uid}");
        }
    }

    /// Sends SIGTERM, as `docker stop` does, and waits as long as Docker would.
    pub(super) fn stop_like_docker(&mut self) -> ExitStatus {
        self.process.signal("TERM");
        self.process.wait_for_exit(DOCKER_STOP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "tributary was still running {DOCKER_STOP_TIMEOUT:?} after SIGTERM; `docker stop` would SIGKILL it. \
                 Its log:\n{}",
                self.log()
            )
        })
    }

    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

/// A command with the image's environment only (no variable of the test's
/// leaks in), run as the image's user when the test itself runs as root.
pub(super) fn image_command(
    argv: &[String],
    env: &[(String, String)],
    (uid, gid): (u32, u32),
) -> Command {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().map(|(key, value)| (key, value)))
        .current_dir("/");
    if running_as_root() {
        command.uid(uid).gid(gid);
    }
    command
}

pub(super) fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|process| process.uid() == 0)
}

pub(super) fn run(argv: &[String], env: &[(String, String)], user: (u32, u32)) -> Output {
    image_command(argv, env, user).output().unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"))
}

pub(super) fn describe(output: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}
