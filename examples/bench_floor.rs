//! The floor of `bench/run`: the fastest an axum service can answer the bench's
//! requests on this machine, so that Tributary's figures can be given as ratios
//! to it. Bare axum, served by `axum::serve`: no logging, no middleware, no store.
//!
//! - `POST /record` and `POST /v1/vehicles/{vehicle_id}/readings` parse the JSON
//!   body (into a `serde_json::Value`, as Tributary does) and answer a constant
//!   JSON object.
//! - `GET /collect` answers a constant JSON object shaped like `/collect`'s
//!   answer for a vehicle with all four built-in signals.
//! - Compressed bodies are decompressed by tower-http's layer, as in
//!   Tributary, so that the compressed batches have a floor too.
//!
//! `cargo run --release --example bench_floor [127.0.0.1:8001]`; the address
//! may also be given in `BENCH_FLOOR_LISTEN`.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

async fn parse_and_acknowledge(Json(body): Json<Value>) -> Json<Value> {
    // Keep the parsed body alive until here, as a handler that used it would.
    std::hint::black_box(&body);
    Json(json!({"success": true}))
}

async fn constant() -> Json<Value> {
    Json(json!({
        "current_engine_temperature": 90.5,
        "average_engine_temperature": 90.5,
        "current_vehicle_speed": 42.0,
        "average_vehicle_speed": 42.0,
        "current_engine_rpm": 1850.0,
        "average_engine_rpm": 1850.0,
        "current_cabin_temperature": 21.5,
        "average_cabin_temperature": 21.5,
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BENCH_FLOOR_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8001".to_owned());
    let app = Router::new()
        .route("/record", post(parse_and_acknowledge))
        .route("/v1/vehicles/{vehicle_id}/readings", post(parse_and_acknowledge))
        .route("/collect", get(constant))
        .layer(tower_http::decompression::RequestDecompressionLayer::new());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("bench_floor listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
