//! The real application started in-process on a free port, on either store,
//! with one helper per endpoint.

use std::io::Write;

use reqwest::StatusCode;
use serde_json::Value;
use tributary::config::ServeSettings;
use tributary::startup::Application;

use super::redis::RedisServer;

/// A signal catalog file adding `battery_voltage` (V, 0 to 60, VSS path
/// `Vehicle.LowVoltageBattery.CurrentVoltage`). Keep it alive while the app runs.
pub fn battery_voltage_catalog() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        "[[signal]]\nname = \"battery_voltage\"\nunit = \"V\"\nmin = 0\nmax = 60\n\
         description = \"Low-voltage battery\"\nvss_path = \"Vehicle.LowVoltageBattery.CurrentVoltage\"\n"
    )
    .unwrap();
    file
}

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
}

/// The running application, and the Redis behind it if any.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// The separate metrics port, when `TRIBUTARY_METRICS_LISTEN` is set.
    pub metrics_port: Option<u16>,
    pub client: reqwest::Client,
    pub redis: Option<RedisServer>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    customize: impl FnOnce(&mut ServeSettings),
) -> TestApp {
    let redis = (backend == Backend::Redis).then(RedisServer::start);
    let mut settings = ServeSettings::for_tests();
    settings.redis_url = redis.as_ref().map(|redis| redis.url().into());
    customize(&mut settings);
    spawn_app_on(settings, redis).await
}

/// The service on a Redis the test runs or fakes itself, at `url`.
pub async fn spawn_app_at(url: impl Into<String>) -> TestApp {
    let mut settings = ServeSettings::for_tests();
    settings.redis_url = Some(url.into().into());
    spawn_app_on(settings, None).await
}

pub async fn spawn_app_on(settings: ServeSettings, redis: Option<RedisServer>) -> TestApp {
    let app = Application::build(&settings).await.expect("the application builds");
    let port = app.port();
    let metrics_port = app.metrics_addr().map(|address| address.port());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        metrics_port,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        redis,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// A response with its body already read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    /// The value of header `name`, which must be there.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header; body: {}", self.text))
            .to_str()
            .unwrap()
    }
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// Asserts an RFC 9457 problem with `status` whose detail mentions `needle`.
    pub fn assert_problem(&self, status: u16, needle: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        assert_eq!(self.content_type, "application/problem+json", "body: {}", self.text);
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        assert!(body["type"].as_str().unwrap().starts_with("urn:tributary:problem:"), "{body}");
        assert!(body["title"].is_string(), "{body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(needle), "detail {detail:?} should mention {needle:?}");
        // Every problem names its request, as the answer's header does.
        assert_eq!(body["request_id"], self.header("x-request-id"), "{body}");
        body
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the request reaches the server");
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Answer { status, content_type, headers, text }
    }

    pub async fn post_record(&self, body: &Value) -> Answer {
        self.send(self.client.post(self.url("/record")).json(body)).await
    }

    pub async fn post_record_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Answer {
        let mut request = self.client.post(self.url("/record")).body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        self.send(request).await
    }

    pub async fn collect(&self) -> Value {
        let answer = self.send(self.client.get(self.url("/collect"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub fn redis(&mut self) -> &mut RedisServer {
        self.redis.as_mut().expect("this app runs on Redis")
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server.
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap().unwrap();
    }
}

/// Generates one `#[tokio::test]` per store for each listed `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Redis).await
                }
            )*
        }
    };
}
