//! Compressed uploads and answers: request bodies in gzip, deflate or zstd
//! are accepted on the write routes, with the 1 MiB limit on the decompressed
//! size (a bomb gets 413 having cost at most that), a corrupt or cut-short
//! stream gets 400, and nothing of a refused body is stored; large answers
//! are compressed for a client that asks, `/record`'s tiny one never.

use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::common::{Answer, Backend, TestApp, spawn_app, spawn_app_with, start_binary};

/// The encodings a body may have, each with its compressor.
const ENCODINGS: [&str; 3] = ["gzip", "deflate", "zstd"];

fn compress(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    match encoding {
        "gzip" => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        // HTTP's `deflate` is the zlib format (RFC 9110 §8.4.1.2).
        "deflate" => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        "zstd" => zstd::bulk::compress(bytes, 1).unwrap(),
        other => panic!("no compressor for {other}"),
    }
}

fn decompress(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap(),
        "deflate" => flate2::read::ZlibDecoder::new(bytes).read_to_end(&mut out).unwrap(),
        "zstd" => zstd::stream::read::Decoder::new(bytes).unwrap().read_to_end(&mut out).unwrap(),
        other => panic!("no decompressor for {other}"),
    };
    out
}

async fn post_encoded(app: &TestApp, path: &str, encoding: &str, body: Vec<u8>) -> Answer {
    send_encoded(&app.client, &app.url(path), encoding, body).await
}

/// POSTs `body` to `url` with `Content-Encoding: encoding`.
async fn send_encoded(
    client: &reqwest::Client,
    url: &str,
    encoding: &str,
    body: Vec<u8>,
) -> Answer {
    let request = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", encoding)
        .body(body);
    let response = request.send().await.expect("the request reaches the server");
    let status = response.status();
    let headers = response.headers().clone();
    let content_type =
        headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    Answer { status, content_type, headers, text: response.text().await.unwrap() }
}

/// A batch of `n` readings, one a second, the newest a minute ago.
fn batch(n: usize) -> Value {
    let newest = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 60_000;
    let readings: Vec<Value> = (0..n)
        .map(|i| json!({"timestamp": newest - 1000 * i as i64, "engine_rpm": 800 + i % 50}))
        .collect();
    Value::Array(readings)
}

async fn each_encoding_round_trips_on_both_write_routes(backend: Backend) {
    let app = spawn_app(backend).await;
    for (i, encoding) in ENCODINGS.into_iter().enumerate() {
        let reading =
            json!({"vehicle_id": format!("legacy-{encoding}"), "engine_temperature": 80 + i});
        let body = compress(encoding, reading.to_string().as_bytes());
        let answer = post_encoded(&app, "/record", encoding, body).await;
        assert_eq!(answer.status, 200, "{encoding}: {}", answer.text);
        let answer =
            app.get(&format!("/v1/vehicles/legacy-{encoding}/signals/engine_temperature")).await;
        assert_eq!(answer.json()["readings"][0]["value"], 80.0 + i as f64, "{encoding}");

        let json = batch(100).to_string();
        let body = compress(encoding, json.as_bytes());
        assert!(body.len() * 5 < json.len(), "{encoding}: {} of {} bytes", body.len(), json.len());
        let path = format!("/v1/vehicles/car-{encoding}/readings");
        let answer = post_encoded(&app, &path, encoding, body).await;
        assert_eq!(answer.status, 200, "{encoding}: {}", answer.text);
        assert_eq!(answer.json()["accepted"], 100, "{encoding}");
        let answer = app.get(&format!("/v1/vehicles/car-{encoding}")).await;
        assert_eq!(
            answer.json()["signals"]["engine_rpm"]["total"],
            100,
            "{encoding}: {}",
            answer.text
        );
    }
}

/// A corrupt or cut-short stream is a 400 that says so; nothing is stored.
async fn a_truncated_or_corrupt_stream_gets_400_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let json = batch(100).to_string();
    for encoding in ENCODINGS {
        let whole = compress(encoding, json.as_bytes());
        let cut = whole[..whole.len() / 2].to_vec();
        let mut corrupt = whole.clone();
        for byte in &mut corrupt[whole.len() / 3..whole.len() / 3 + 16] {
            *byte ^= 0x5a;
        }
        let garbage = b"this is not compressed at all".to_vec();
        for (what, body) in [("cut short", cut), ("not compressed", garbage)] {
            let answer = post_encoded(&app, "/v1/vehicles/broken/readings", encoding, body).await;
            let problem = answer.assert_problem(400, "corrupt or cut short");
            assert_eq!(
                problem["type"], "urn:tributary:problem:malformed-body",
                "{encoding} {what}"
            );
        }
        // A zstd frame without a checksum may decode, corrupt, into bytes
        // that are not JSON: a 400 all the same.
        let answer = post_encoded(&app, "/v1/vehicles/broken/readings", encoding, corrupt).await;
        let problem = answer.assert_problem(400, "");
        assert_eq!(problem["type"], "urn:tributary:problem:malformed-body", "{encoding} corrupt");
    }
    app.get("/v1/vehicles/broken").await.assert_problem(404, "");
}

on_both_stores!(
    each_encoding_round_trips_on_both_write_routes,
    a_truncated_or_corrupt_stream_gets_400_and_stores_nothing,
);

/// A zstd frame of `blocks` RLE blocks of 128 KiB of zeros each, with no
/// content size: 4 bytes per 128 KiB, the densest bomb the format allows.
fn zstd_bomb(blocks: usize) -> Vec<u8> {
    // Magic; frame header: no content size, no checksum, a 128 KiB window.
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
    for block in 0..blocks {
        let last = u32::from(block + 1 == blocks);
        // Block header: last flag, type 1 (RLE), size 128 KiB; then the byte.
        let header = last | (1 << 1) | (128 * 1024) << 3;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

/// The resident memory of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Bombs against the real binary: 64 KiB of zstd that would expand to 2 GiB,
/// and gzip and deflate bodies that would expand to 32 MiB (their formats'
/// ratio is at most about 1000:1), several at once. Each gets 413 after the
/// first MiB of output, and the process' resident memory grows by a few MiB,
/// not by what the bombs hold; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_bomb_gets_413_having_cost_at_most_the_limit() {
    let zstd = zstd_bomb(16 * 1024);
    assert_eq!(zstd.len(), 6 + 64 * 1024);
    // It is a valid frame: its first 3 MiB decompress, as zeros.
    let mut head = Vec::new();
    let decoder = zstd::stream::read::Decoder::new(&zstd[..]).unwrap();
    decoder.take(3 << 20).read_to_end(&mut head).unwrap();
    assert!(head.len() == 3 << 20 && head.iter().all(|&b| b == 0));
    let zeros = vec![b' '; 32 << 20];
    let bombs = [
        ("zstd", zstd),
        ("gzip", compress("gzip", &zeros)),
        ("deflate", compress("deflate", &zeros)),
    ];
    drop(zeros);

    let log = tempfile::NamedTempFile::new().unwrap();
    let (server, port) = start_binary(&[], log.reopen().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // Warm up: a refusal of each kind, so the allocator's pools exist.
    for (encoding, bomb) in &bombs {
        let url = format!("{base}/v1/vehicles/bomb/readings");
        let answer = send_encoded(&client, &url, encoding, bomb.clone()).await;
        answer.assert_problem(413, "larger than the limit of 1048576 bytes");
    }
    let before = resident_bytes(server.id());
    let sends: Vec<_> = (0..8)
        .map(|i| {
            let (encoding, bomb) = bombs[i % bombs.len()].clone();
            let (client, url) = (client.clone(), format!("{base}/record"));
            tokio::spawn(async move {
                let answer = send_encoded(&client, &url, encoding, bomb).await;
                let problem = answer.assert_problem(413, "larger than the limit");
                assert_eq!(problem["type"], "urn:tributary:problem:body-too-large");
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }
    let after = resident_bytes(server.id());
    let grown = after.saturating_sub(before);
    eprintln!("resident memory {before} → {after} bytes (+{grown}) over 8 bombs at once");
    assert!(grown < 24 << 20, "resident memory grew by {grown} bytes over 8 bombs");
    for vehicle in ["bomb", "default"] {
        let answer = client.get(format!("{base}/v1/vehicles/{vehicle}")).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{vehicle} was stored");
    }
}

/// Large answers are compressed for a client that asks, in the encoding it
/// prefers, and decompress to the same JSON; `/record`'s answer and problems,
/// which are small, never are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_are_compressed_when_asked_and_small_ones_never() {
    let app = spawn_app_with(Backend::Memory, |s| s.window = 200).await;
    let plain = app.get("/openapi.json").await;
    assert!(plain.headers.get("content-encoding").is_none());
    for encoding in ENCODINGS {
        let answer = app
            .client
            .get(app.url("/openapi.json"))
            .header("Accept-Encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.headers()["content-encoding"], encoding);
        let body = answer.bytes().await.unwrap();
        assert!(
            body.len() * 4 < plain.text.len(),
            "{encoding}: {} of {}",
            body.len(),
            plain.text.len()
        );
        assert_eq!(decompress(encoding, &body), plain.text.as_bytes(), "{encoding}");
    }

    let answer = app.post_json("/v1/vehicles/car-1/readings", &batch(200)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let window = app
        .client
        .get(app.url("/v1/vehicles/car-1/signals/engine_rpm"))
        .header("Accept-Encoding", "zstd;q=1, gzip;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(window.headers()["content-encoding"], "zstd");
    let window: Value =
        serde_json::from_slice(&decompress("zstd", &window.bytes().await.unwrap())).unwrap();
    assert_eq!(window["readings"].as_array().unwrap().len(), 200);

    for (path, body) in
        [("/record", json!({"engine_rpm": 900})), ("/record", json!({"engine_rpm": "x"}))]
    {
        let answer = app
            .client
            .post(app.url(path))
            .header("Accept-Encoding", "gzip, zstd")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            answer.headers().get("content-encoding").is_none(),
            "{body}: {:?}",
            answer.headers()
        );
        let text = answer.text().await.unwrap();
        assert!(text.starts_with('{'), "{text}");
    }
}

/// A request that names no coding skips the coding layers (`src/http/coding.rs`):
/// what it gets is what the layers give a client whose `Accept-Encoding`
/// names only codings the service does not have (the same identity answer,
/// by the same rules), on answers large and small, good and bad, with
/// `Vary: Accept-Encoding` where a client that asked would get it compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_naming_no_coding_gets_what_the_coding_layers_would_give() {
    let app = spawn_app_with(Backend::Memory, |s| s.window = 200).await;
    let answer = app.post_json("/v1/vehicles/car-1/readings", &batch(200)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let requests = [
        ("GET", "/openapi.json", None, true),
        ("GET", "/v1/vehicles/car-1/signals/engine_rpm", None, true),
        ("GET", "/collect?vehicle_id=car-1", None, false),
        ("POST", "/record", Some(json!({"engine_rpm": 900})), false),
        ("POST", "/record", Some(json!({"engine_rpm": "x"})), false),
        ("GET", "/v1/vehicles/no-such-car", None, false),
        ("GET", "/healthz", None, false),
    ];
    for (method, path, body, large) in requests {
        let mut answers = Vec::new();
        for accept in [None, Some("identity"), Some("br;q=1, compress;q=0.5")] {
            // The same request id each time, so that problems match.
            let mut request = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .header("X-Request-Id", "coding-switch");
            if let Some(accept) = accept {
                request = request.header("Accept-Encoding", accept);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let answer = request.send().await.unwrap();
            let status = answer.status();
            let mut headers = answer.headers().clone();
            headers.remove("date");
            let text = answer.text().await.unwrap();
            answers.push((accept, status, headers, text));
        }
        let (_, status, headers, _) = &answers[0];
        assert_eq!(
            headers.get("vary").is_some_and(|v| v == "accept-encoding"),
            large,
            "{method} {path}: {status} {headers:?}"
        );
        assert!(headers.get("content-encoding").is_none(), "{method} {path}: {headers:?}");
        let first = &answers[0];
        for other in &answers[1..] {
            assert_eq!(
                (&first.1, &first.2, &first.3),
                (&other.1, &other.2, &other.3),
                "{method} {path}: no Accept-Encoding against {:?}",
                other.0
            );
        }
    }
}
