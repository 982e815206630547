"""Uses the Python client that openapi-python-client generated from the live
service's /openapi.json (scripts/check-openapi-client) as an application
would: records through both write routes and reads back through every read
route, with the generated models, against that same service.

Usage: python use_client.py BASE_URL   (the generated package `tributary_client`
on PYTHONPATH). Exits non-zero, saying what differed, on any failure.
"""

import datetime
import sys

from tributary_client import Client
from tributary_client.api.operations import healthz, readyz
from tributary_client.api.seed import collect_get, record
from tributary_client.api.v1 import get_signal, get_vehicle, list_signals, post_readings
from tributary_client.models import (
    Accepted,
    CollectResponse,
    Problem,
    ReadingObject,
    RecordBody,
    RecordOk,
    SignalList,
    SignalWindow,
    Status,
    VehicleSummary,
)


def check(condition, what):
    if not condition:
        sys.exit(f"use_client: {what}")


def main(base_url):
    client = Client(base_url=base_url, raise_on_unexpected_status=True)

    status = healthz.sync(client=client)
    check(isinstance(status, Status) and status.status == "ok", f"healthz: {status!r}")
    status = readyz.sync(client=client)
    check(isinstance(status, Status) and status.status == "ready", f"readyz: {status!r}")
    signals = list_signals.sync(client=client)
    check(isinstance(signals, SignalList), f"list_signals: {signals!r}")
    names = {signal.name for signal in signals.signals}
    check({"engine_rpm", "engine_temperature"} <= names, f"signals: {names}")

    # The seed's route, then its read.
    answer = record.sync(client=client, body=RecordBody(vehicle_id="gen-1", engine_temperature=91.5))
    check(isinstance(answer, RecordOk), f"record: {answer!r}")
    collected = collect_get.sync(client=client, vehicle_id="gen-1")
    check(isinstance(collected, CollectResponse), f"collect: {collected!r}")
    check(collected.current_engine_temperature == 91.5, f"collect: {collected!r}")

    # The fleet API: a batch with device timestamps (both forms), then one object.
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    minute_ago = now - datetime.timedelta(minutes=1)
    batch = [
        ReadingObject(timestamp=minute_ago, engine_rpm=800.0, vehicle_speed=10.0),
        ReadingObject(timestamp=int(minute_ago.timestamp() * 1000) + 1000, engine_rpm=900.0),
    ]
    accepted = post_readings.sync(vehicle_id="gen-2", client=client, body=batch)
    # Three readings: the first object holds two signals.
    check(isinstance(accepted, Accepted) and accepted.accepted == 3, f"post_readings: {accepted!r}")
    accepted = post_readings.sync(vehicle_id="gen-2", client=client, body=ReadingObject(engine_rpm=1000.0))
    check(isinstance(accepted, Accepted) and accepted.accepted == 1, f"post_readings: {accepted!r}")

    window = get_signal.sync(vehicle_id="gen-2", signal="engine_rpm", client=client)
    check(isinstance(window, SignalWindow), f"get_signal: {window!r}")
    values = [reading.value for reading in window.readings]
    check(values == [1000.0, 900.0, 800.0], f"get_signal: readings {values}")
    check(window.total == 3 and window.current == 1000.0, f"get_signal: {window!r}")
    check(window.readings[2].timestamp == minute_ago, f"get_signal: {window.readings[2].timestamp}")

    vehicle = get_vehicle.sync(vehicle_id="gen-2", client=client)
    check(isinstance(vehicle, VehicleSummary), f"get_vehicle: {vehicle!r}")
    summaries = vehicle.signals.additional_properties
    check(set(summaries) == {"engine_rpm", "vehicle_speed"}, f"get_vehicle: {set(summaries)}")
    check(summaries["vehicle_speed"].current == 10.0, f"get_vehicle: {summaries['vehicle_speed']!r}")

    # A refusal comes back as the generated Problem.
    problem = post_readings.sync(vehicle_id="gen-3", client=client, body=ReadingObject(engine_rpm=-5.0))
    check(isinstance(problem, Problem), f"an out-of-range reading: {problem!r}")
    check(problem.status == 422 and problem.type_ == "urn:tributary:problem:invalid-request", repr(problem))
    missing = get_vehicle.sync(vehicle_id="gen-3", client=client)
    check(isinstance(missing, Problem) and missing.status == 404, f"an unknown vehicle: {missing!r}")
    print("use_client: the generated client recorded and read back through every route")


if __name__ == "__main__":
    main(sys.argv[1])
