//! A real browser for the page tests: Debian's Chromium, headless, driven
//! through Debian's chromedriver over WebDriver (fantoccini). Each `Browser`
//! starts its own chromedriver on a free port with a fresh profile, and kills
//! it and its Chromium when dropped. `scripts/browser-deps` installs what this
//! needs; without it the tests fail and say so, never skip.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::common::{Process, free_port};

/// Debian's Chromium (a wrapper script that sets its flags, then runs the browser).
const CHROMIUM: &str = "/usr/bin/chromium";

const INSTALL: &str = "run `scripts/browser-deps`: it installs Debian's chromium and \
     chromium-driver, and axe-core into .tools/axe";

/// A phone (the page's first target) and a laptop, in CSS pixels.
pub const PHONE: (u32, u32) = (390, 844);
pub const DESKTOP: (u32, u32) = (1280, 800);

/// Without these, Chromium keeps trying to reach Google's servers (updates,
/// sync, field trials): the tests must run on a machine with no internet, and
/// no request may leave the test's loopback.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    // Screenshots at a phone's pixel density, sharp enough for the README.
    "--force-device-scale-factor=2",
];

/// One browser at a time: the machine has two cores, and the tests hold the
/// page to deadlines that three Chromiums at once would make flaky.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The path of `name` on `PATH` (or in /usr/bin), if it is there.
fn installed(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/bin"])
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
}

/// axe-core's script, to inject into a page.
pub fn axe_source() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".tools/axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("axe-core is missing ({}: {err}); {INSTALL}", path.display()))
}

/// chromedriver in a process group of its own, so that dropping it also kills
/// the Chromium it started (a `Child` is killed alone, and a browser would outlive the test).
struct Driver {
    process: Process,
    port: u16,
}

impl Driver {
    async fn start(binary: &PathBuf) -> Self {
        for _ in 0..3 {
            let port = free_port();
            let process = Process::spawn(
                Command::new(binary)
                    .arg(format!("--port={port}"))
                    .arg("--allowed-ips=127.0.0.1")
                    .process_group(0)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .unwrap_or_else(|err| panic!("cannot start {}: {err}; {INSTALL}", binary.display()));
            let mut driver = Self { process, port };
            if driver.wait_ready().await {
                return driver;
            }
        }
        panic!("chromedriver did not start on a free port in 3 attempts");
    }

    /// Whether it answers `/status` as ready; false if it exited (its port taken).
    async fn wait_ready(&mut self) -> bool {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("http://127.0.0.1:{}/status", self.port);
        let started = Instant::now();
        loop {
            if self.process.exited().is_some() {
                return false;
            }
            if let Ok(response) = client.get(&url).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return true;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver not ready within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
    }
}

/// `POST /session/{id}/se/log`: the browser's console and network messages
/// since the last call (chromedriver's extension; fantoccini has no call for it).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// A headless Chromium with one window.
pub struct Browser {
    pub client: Client,
    // Dropped in this order: the session, then chromedriver and its browser,
    // then the profile directory, and last the turn.
    _driver: Driver,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    pub async fn start() -> Self {
        let driver_binary = installed("chromedriver")
            .unwrap_or_else(|| panic!("chromedriver is not installed; {INSTALL}"));
        assert!(PathBuf::from(CHROMIUM).is_file(), "{CHROMIUM} is not installed; {INSTALL}");
        let turn = ONE_AT_A_TIME.lock().await;
        let profile = tempfile::tempdir().unwrap();
        let driver = Driver::start(&driver_binary).await;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|err| panic!("chromedriver could not start {CHROMIUM}: {err}"));
        Self { client, _driver: driver, _profile: profile, _turn: turn }
    }

    /// Ends the session, closing the browser cleanly (dropping kills it).
    pub async fn close(self) {
        let Self { client, _driver, _profile, _turn } = self;
        client.close().await.expect("the session closes");
    }

    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|err| panic!("cannot open {url}: {err}"));
    }

    /// Makes the page's viewport exactly `width` × `height` CSS pixels: sets
    /// the window to that plus the frame around the page (the window's size
    /// less the viewport, as the page reports both), until the page reports
    /// the viewport asked for. Polled with a deadline: headless Chromium
    /// applies a resize on its own time, and one measurement taken too early
    /// (a CI run saw 1280×657 after asking for 1280×800) must not decide it.
    pub async fn viewport(&self, (width, height): (u32, u32)) {
        let want = (u64::from(width), u64::from(height));
        let started = Instant::now();
        let mut window = want;
        loop {
            let (w, h) = (u32::try_from(window.0).unwrap(), u32::try_from(window.1).unwrap());
            self.client.set_window_size(w, h).await.unwrap();
            let sizes = self.js("return [innerWidth, innerHeight, outerWidth, outerHeight]").await;
            let size = |i: usize| sizes[i].as_u64().unwrap();
            let (inner, outer) = ((size(0), size(1)), (size(2), size(3)));
            if inner == want {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the viewport is {inner:?}, not {want:?}, with the window at {outer:?}"
            );
            window = (
                want.0 + outer.0.saturating_sub(inner.0),
                want.1 + outer.1.saturating_sub(inner.1),
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `script` (a function body: `return …`) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.js_with(script, vec![]).await
    }

    /// Runs `script` with `arguments[0…]`.
    pub async fn js_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|err| panic!("{err}: in {script}"))
    }

    /// Polls `script` until it returns something truthy, and returns that; or
    /// panics after `deadline`, saying what the page showed.
    pub async fn wait_for(
        &self,
        deadline: Duration,
        what: &str,
        script: &str,
        args: Vec<Value>,
    ) -> Value {
        let started = Instant::now();
        loop {
            let value = self.js_with(script, args.clone()).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() >= deadline {
                let page = self.describe().await;
                panic!(
                    "timed out after {deadline:?} waiting for {what}; last {value}; the page: {page}"
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// What a person would see first: the state marker, the notice, the tiles.
    pub async fn describe(&self) -> Value {
        self.js(
            "const text = (id) => { const e = document.getElementById(id); return e && !e.hidden ? e.innerText : null; };
             return {url: location.href, state: text('state'), notice: text('notice'),
                     tiles: [...document.querySelectorAll('.tile')].map((t) => t.innerText)};",
        )
        .await
    }

    /// The browser's SEVERE log entries (console errors, uncaught exceptions,
    /// refused policies, failed requests) since the last call.
    pub async fn severe_logs(&self) -> Vec<Value> {
        let entries = self.client.issue_cmd(BrowserLog).await.expect("chromedriver's browser log");
        let entries = entries.as_array().cloned().unwrap_or_default();
        entries.into_iter().filter(|e| e["level"] == "SEVERE").collect()
    }

    /// Every URL the page loaded that is not on its own origin.
    pub async fn foreign_requests(&self) -> Vec<String> {
        let urls = self
            .js(
                "return performance.getEntries()
                   .map((entry) => entry.name)
                   .filter((name) => /^[a-z]+:/i.test(name) && new URL(name).origin !== location.origin);",
            )
            .await;
        serde_json::from_value(urls).unwrap()
    }

    /// axe-core's violations of impact "serious" or "critical" on the page as it is now.
    pub async fn serious_accessibility_violations(&self, axe: &str) -> Vec<Value> {
        self.js(&format!("{axe}\n;return typeof axe;")).await;
        let report = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then((r) => done(r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.map((n) => n.target.join(' ') + ': ' + n.failureSummary)}))))
                   .catch((e) => done({error: String(e)}));",
                vec![],
            )
            .await
            .expect("axe runs");
        let Value::Array(violations) = report else { panic!("axe failed: {report}") };
        violations
            .into_iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .collect()
    }

    /// Writes a screenshot of the viewport to `.screenshots/<name>.png` (git-ignored).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}
