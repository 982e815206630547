//! The floors of `bench/run`: the fastest an axum service can answer the
//! bench's requests on this machine, so that Tributary's figures can be given
//! as ratios to them. Bare axum, served by `axum::serve`: no logging, no
//! middleware.
//!
//! Without a Redis URL, the bare floor (no store at all):
//!
//! - `POST /record` and `POST /v1/vehicles/{vehicle_id}/readings` parse the JSON
//!   body (into a `serde_json::Value`, as Tributary does) and answer a constant
//!   JSON object.
//! - `GET /collect` answers a constant JSON object shaped like `/collect`'s
//!   answer for a vehicle with all four built-in signals.
//! - Compressed bodies are decompressed by tower-http's layer, as in
//!   Tributary, so that the compressed batches have a floor too.
//!
//! With a Redis URL, the Redis floor: the least Redis work that keeps a window
//! of the newest 10 readings (the seed's own data model), over one multiplexed
//! `ConnectionManager`, so that Tributary on Redis can be compared with what
//! any design must do on the same `redis-server`:
//!
//! - `POST /record` parses the JSON body, then `LPUSH` + `LTRIM 0 9` of the
//!   vehicle's list in one `MULTI` pipeline, and answers `{"success": true}`;
//! - `GET /collect` is one `LRANGE 0 9` of the vehicle's list, answered as the
//!   current value and the average (`null` when the list is empty);
//! - the vehicle is `vehicle_id` in the body or the query, else `default`, so
//!   that the fleet scripts spread keys over the fleet as they do for Tributary;
//! - `POST /fill/{vehicles}` fills the lists of the bench's fleet
//!   (`1HGCM82633A000000`, …) with 10 readings each, so that the fleet's
//!   `/collect` reads full windows as Tributary's does after `bench_fill`.
//!
//! Keys are `floor:{vehicle}`: nothing Tributary writes.
//!
//! `cargo run --release --example bench_floor [127.0.0.1:8001 [redis://127.0.0.1:6379]]`;
//! the address may also be given in `BENCH_FLOOR_LISTEN`, the Redis URL in
//! `BENCH_FLOOR_REDIS`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use redis::aio::ConnectionManager;
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

/// The newest readings kept per vehicle, as Tributary's default window.
const WINDOW: isize = 10;

fn key(vehicle: &str) -> String {
    format!("floor:{vehicle}")
}

type Answer = Result<Json<Value>, (StatusCode, String)>;

fn unavailable(error: redis::RedisError) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

async fn redis_record(State(redis): State<ConnectionManager>, Json(body): Json<Value>) -> Answer {
    let vehicle = body.get("vehicle_id").and_then(Value::as_str).unwrap_or("default");
    let Some(value) = body.get("engine_temperature").and_then(Value::as_f64) else {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, "engine_temperature: a number".into()));
    };
    let key = key(vehicle);
    let () = redis::pipe()
        .atomic()
        .lpush(&key, value)
        .ignore()
        .ltrim(&key, 0, WINDOW - 1)
        .ignore()
        .query_async(&mut redis.clone())
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({"success": true})))
}

async fn redis_collect(
    State(redis): State<ConnectionManager>,
    RawQuery(query): RawQuery,
) -> Answer {
    let query = query.unwrap_or_default();
    let vehicle = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "vehicle_id")
        .map(|(_, value)| value)
        .unwrap_or("default".into());
    let values: Vec<f64> = redis::cmd("LRANGE")
        .arg(key(&vehicle))
        .arg(0)
        .arg(WINDOW - 1)
        .query_async(&mut redis.clone())
        .await
        .map_err(unavailable)?;
    let average = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    Ok(Json(json!({
        "current_engine_temperature": values.first(),
        "average_engine_temperature": average,
    })))
}

/// Fills the lists of fleet vehicles `0..vehicles` with `WINDOW` readings each,
/// in pipelines of 1,000 commands.
async fn redis_fill(State(redis): State<ConnectionManager>, Path(vehicles): Path<usize>) -> Answer {
    let readings: Vec<f64> = (0..WINDOW).map(|i| 85.0 + i as f64 * 0.5).collect();
    let mut redis = redis.clone();
    for start in (0..vehicles).step_by(1000) {
        let mut pipe = redis::pipe();
        for index in start..vehicles.min(start + 1000) {
            let key = key(&format!("1HGCM82633A{index:06}"));
            pipe.del(&key).ignore().rpush(&key, &readings).ignore();
        }
        let () = pipe.query_async(&mut redis).await.map_err(unavailable)?;
    }
    Ok(Json(json!({"filled": vehicles})))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args
        .next()
        .or_else(|| std::env::var("BENCH_FLOOR_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8001".to_owned());
    let redis_url = args.next().or_else(|| std::env::var("BENCH_FLOOR_REDIS").ok());
    let app = match &redis_url {
        None => Router::new()
            .route("/record", post(parse_and_acknowledge))
            .route("/v1/vehicles/{vehicle_id}/readings", post(parse_and_acknowledge))
            .route("/collect", get(constant))
            .layer(tower_http::decompression::RequestDecompressionLayer::new()),
        Some(url) => {
            let redis = ConnectionManager::new(redis::Client::open(url.as_str())?).await?;
            Router::new()
                .route("/record", post(redis_record))
                .route("/collect", get(redis_collect))
                .route("/fill/{vehicles}", post(redis_fill))
                .with_state(redis)
        }
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let mode = if redis_url.is_some() { "Redis floor" } else { "floor" };
    eprintln!("bench_floor ({mode}) listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
