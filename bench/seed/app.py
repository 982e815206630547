"""The seed's design, for bench/run to measure beside Tributary.

A small Flask service as the original engine-temperature service was built:
Flask 3, redis-py 5, gunicorn 21 (one sync worker, as the seed's Dockerfile ran
it) and loguru. Kept as naive as the seed on purpose, since it is what users
compare against:

- a new Redis connection for every request (no pool shared between requests);
- POST /record: the legacy body, {"engine_temperature": 90.5}; the reading is
  pushed onto one list and the list trimmed to the newest 10 (LPUSH + LTRIM in
  one MULTI); answers {"success": true};
- GET or POST /collect: reads the list and answers the newest value and the
  average, {"average_engine_temperature": ..., "current_engine_temperature": ...}
  (null before anything is recorded; keys sorted, as Flask writes them);
- one loguru line per request, to stderr.

Redis is REDIS_HOST:REDIS_PORT (default 127.0.0.1:6379).
"""

import os
import sys
import time

import redis
from flask import Flask, jsonify, request
from loguru import logger

REDIS_HOST = os.environ.get("REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("REDIS_PORT", "6379"))
KEY = "seed:engine_temperature"
WINDOW = 10

logger.remove()
logger.add(sys.stderr, level="INFO")

app = Flask(__name__)


def connect():
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT)


@app.before_request
def start_timer():
    request.started = time.perf_counter()


@app.after_request
def log_request(response):
    elapsed_ms = (time.perf_counter() - request.started) * 1000
    logger.info(f"{request.method} {request.path} {response.status_code} {elapsed_ms:.2f}ms")
    return response


@app.post("/record")
def record():
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict) or "engine_temperature" not in data:
        return jsonify({"error": "engine_temperature is required"}), 400
    try:
        value = float(data["engine_temperature"])
    except (TypeError, ValueError):
        return jsonify({"error": "engine_temperature must be a number"}), 400
    client = connect()
    try:
        pipe = client.pipeline()
        pipe.lpush(KEY, value)
        pipe.ltrim(KEY, 0, WINDOW - 1)
        pipe.execute()
    finally:
        client.close()
    return jsonify({"success": True})


@app.route("/collect", methods=["GET", "POST"])
def collect():
    client = connect()
    try:
        values = [float(v) for v in client.lrange(KEY, 0, WINDOW - 1)]
    finally:
        client.close()
    current = values[0] if values else None
    average = sum(values) / len(values) if values else None
    return jsonify({"current_engine_temperature": current, "average_engine_temperature": average})
