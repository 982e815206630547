"""Schemathesis hooks for Tributary (loaded by scripts/schemathesis).

One check replaces schemathesis' own `positive_data_acceptance`: a request
valid by the document must be accepted, except for the rules the document
states in words because JSON Schema cannot state them:

- a reading's `timestamp` may be at most 5 minutes ahead of the server's clock
  (the limit moves with the clock), and a date-time string must not be before
  2000-01-01 (JSON Schema has no minimum for a `date-time`);
- `/collect` refuses a query and a body that name different vehicles (a rule
  across two parameters).

A 422 is accepted only if every error it lists is one of these, so any other
refusal of valid input still fails the run.
"""

import schemathesis

# The statuses schemathesis' `positive_data_acceptance` accepts by default.
ACCEPTED = {401, 403, 404, 409, 429}


def _documented_refusal(error):
    pointer = error.get("pointer") or ""
    detail = error.get("detail") or ""
    if pointer.endswith("/timestamp") or pointer == "timestamp":
        return "ahead of the server's clock" in detail or "before 2000-01-01" in detail
    if pointer == "/vehicle_id":
        return "the query names vehicle" in detail
    return False


@schemathesis.check
def positive_data_acceptance_but_for_documented_rules(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in ACCEPTED:
        return None
    if status == 422:
        try:
            errors = response.json().get("errors") or []
        except ValueError:
            errors = []
        if errors and all(_documented_refusal(error) for error in errors):
            return None
    raise AssertionError(
        f"A request valid by the document was refused with {status}: {response.text[:500]}"
    )
