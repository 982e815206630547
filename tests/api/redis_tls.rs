//! The Redis side of access control: a password or an ACL user in
//! `TRIBUTARY_REDIS_URL`, and `rediss://` with the operator's own CA
//! (`TRIBUTARY_REDIS_CA`) and client certificates
//! (`TRIBUTARY_REDIS_CLIENT_CERT`/`_KEY`), against real TLS `redis-server`s
//! with certificates made at test time.

use serde_json::json;
use tributary::config::ServeSettings;
use tributary::startup::Application;

use crate::common::{RedisServer, TestApp, TestCa, spawn_app_on};

/// The PEM files a test hands the service; kept alive while it runs.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.0.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

fn settings_for(url: String, customize: impl FnOnce(&mut ServeSettings)) -> ServeSettings {
    let mut settings = ServeSettings::for_tests();
    settings.redis_url = Some(url.into());
    customize(&mut settings);
    settings
}

async fn records_and_collects(app: &TestApp, value: f64) {
    let answer = app.post_record(&json!({"engine_temperature": value})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.collect().await["current_engine_temperature"], value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_operators_ca_records_and_collects() {
    let ca = TestCa::new("Tributary test CA");
    let redis = RedisServer::start_tls_signed_by(&ca, false);
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.pem());
    let url = format!("rediss://localhost:{}/", redis.port);
    let app = spawn_app_on(settings_for(url, |s| s.redis_ca = Some(ca_file)), None).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    records_and_collects(&app, 64.5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_of_another_ca_fails_readiness_saying_so() {
    let (ca, other) = (TestCa::new("the server's CA"), TestCa::new("some other CA"));
    let redis = RedisServer::start_tls_signed_by(&ca, false);
    let files = Files::new();
    let wrong = files.write("other.pem", &other.pem());
    let url = format!("rediss://localhost:{}/", redis.port);
    let app = spawn_app_on(settings_for(url, |s| s.redis_ca = Some(wrong)), None).await;
    let body = app.get("/readyz").await.assert_problem(503, "not reachable");
    let detail = body["detail"].as_str().unwrap().to_lowercase();
    assert!(detail.contains("certificate") && detail.contains("issuer"), "{detail}");
    app.post_record(&json!({"engine_temperature": 60})).await.assert_problem(503, "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_requires_client_certificates_takes_the_configured_one() {
    let ca = TestCa::new("Tributary test CA");
    let redis = RedisServer::start_tls_signed_by(&ca, true);
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.pem());
    let url = format!("rediss://localhost:{}/", redis.port);

    let anonymous =
        spawn_app_on(settings_for(url.clone(), |s| s.redis_ca = Some(ca_file.clone())), None);
    anonymous.await.get("/readyz").await.assert_problem(503, "not reachable");

    let (cert, key) = ca.issue("tributary");
    let (cert, key) = (files.write("client.pem", &cert), files.write("client-key.pem", &key));
    let app = spawn_app_on(
        settings_for(url, |s| {
            s.redis_ca = Some(ca_file);
            s.redis_client_cert = Some(cert);
            s.redis_client_key = Some(key);
        }),
        None,
    )
    .await;
    records_and_collects(&app, 61.0).await;
}

#[tokio::test]
async fn tls_files_with_a_plain_redis_url_or_half_a_client_pair_are_start_up_errors() {
    let files = Files::new();
    let ca = files.write("ca.pem", &TestCa::new("CA").pem());
    let plain = settings_for("redis://127.0.0.1:6390".into(), |s| s.redis_ca = Some(ca.clone()));
    let Err(error) = Application::build(&plain).await else { panic!("it started") };
    assert!(format!("{error:#}").contains("is not rediss://"), "{error:#}");

    let half = settings_for("rediss://localhost:6390".into(), |s| {
        s.redis_client_cert = Some(ca.clone());
    });
    let Err(error) = Application::build(&half).await else { panic!("it started") };
    assert!(format!("{error:#}").contains("TRIBUTARY_REDIS_CLIENT_KEY"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_works_and_a_wrong_password_fails_readiness_saying_so() {
    let redis =
        RedisServer::start_with(&["--user", "tributary", "on", ">s3cret", "~*", "&*", "+@all"]);
    let url = |password: &str| format!("redis://tributary:{password}@127.0.0.1:{}", redis.port);
    let app = spawn_app_on(settings_for(url("s3cret"), |_| {}), None).await;
    records_and_collects(&app, 62.0).await;

    let refused = spawn_app_on(settings_for(url("wrong"), |_| {}), None).await;
    let body = refused.get("/readyz").await.assert_problem(503, "not reachable");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.to_lowercase().contains("password authentication failed"), "{detail}");
    assert!(!detail.contains("wrong@"), "the URL's password is never shown: {detail}");
}
