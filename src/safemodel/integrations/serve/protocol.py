"""The KServe / TF-Serving V1 REST protocol: reading a predict request, writing answers.

Everything a client can get wrong is answered with a JSON body naming it, never with
an accidental 500::

    400 invalid_json          not strict JSON (NaN tokens, duplicate keys, bad UTF-8 ...)
    404 model_not_found       the body lists the models served
    413 too_large             over a limit of :class:`Limits`; values echoed truncated
    415 unsupported_media_type the body is not application/json
    422 invalid_request       the envelope is not {"instances": [record, ...]}, or an
                              unknown method
    422 contract_violation    every failure: column, check, value (truncated), row
    422 scoring_error         the input met the contract but the estimator raised
    503 not_ready             the model is loading, or no version of it verified here
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from itertools import chain, repeat
from typing import Any

import numpy as np

from safemodel._values import echo, shorten
from safemodel.errors import (
    BundleFormatError,
    ContractViolation,
    Failure,
    GoldenMismatchError,
    IntegrityError,
    InvalidArgument,
    SafeModelError,
    ScoringError,
    StoreError,
)
from safemodel.integrations.serve._json import of_type, strict, truncate
from safemodel.integrations.serve.limits import Limits

__all__ = ["HTTPProblem", "check_instances", "error_body", "parse_request", "predictions"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SCALARS = (str, int, float, bool, type(None))
_PLAIN = frozenset(_SCALARS)
_ENVELOPE_KEYS = frozenset({"instances", "method"})
_MAX_FAILURES = 100  # failures listed in one answer; failure_count has them all


class HTTPProblem(Exception):
    """An answer other than 200: status, machine-readable ``error`` and a message."""

    def __init__(self, status: int, error: str, message: str, *,
                 echoed: Mapping[str, Any] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.echoed = echoed
        self.extra = extra

    def body(self, limits: Limits) -> dict[str, Any]:
        return error_body(self.error, self.message, limits, echoed=self.echoed, **self.extra)


def error_body(error: str, message: str, limits: Limits, *,
               echoed: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A strict-JSON error body with every echoed value truncated.

    ``echoed`` holds values already cut and made strict by the library's ``echo``
    (which states the original length); cutting them again would lose it.
    """
    body = {"error": error, "message": truncate(message, 4 * limits.max_echo)}
    body.update(strict(extra, max_string=limits.max_echo, max_items=100))
    body.update(echoed or {})
    return body


def from_error(exc: SafeModelError, limits: Limits) -> HTTPProblem:
    """The answer for a SafeModelError raised while scoring."""
    if isinstance(exc, ContractViolation):
        count = len(exc.failures)
        failures: list[Any] = [_failure(f, limits) for f in exc.failures[:_MAX_FAILURES]]
        if count > _MAX_FAILURES:
            failures.append(f"... {count - _MAX_FAILURES} more")
        return HTTPProblem(422, "contract_violation", _violation_message(exc, limits),
                           echoed={"failures": failures}, failure_count=count,
                           rows=exc.rows[:100])
    if isinstance(exc, ScoringError):
        return HTTPProblem(422, "scoring_error", str(exc), method=exc.method)
    if isinstance(exc, GoldenMismatchError | IntegrityError | BundleFormatError):
        return HTTPProblem(503, "not_ready", str(exc))
    if isinstance(exc, StoreError):
        return HTTPProblem(404, "model_not_found", str(exc))
    if isinstance(exc, InvalidArgument):
        return HTTPProblem(422, "invalid_request", str(exc), argument=exc.argument)
    return HTTPProblem(422, "invalid_request", str(exc))


def _failure(failure: Failure, limits: Limits) -> dict[str, Any]:
    return {"column": shorten(str(failure.column), limits.max_echo),
            "check": shorten(str(failure.check), limits.max_echo),
            "value": echo(failure.value, limits.max_echo), "row": failure.row}


def _violation_message(exc: ContractViolation, limits: Limits) -> str:
    # The library's message repeats offending values in full; rebuild it from the
    # truncated failures so a 1 MB value is never echoed.
    count = len(exc.failures)
    columns = sorted({f.column for f in exc.failures})
    shown = ", ".join(truncate(c, 64) for c in columns[:10])
    more = f" and {len(columns) - 10} more" if len(columns) > 10 else ""
    return (f"The input breaks the contract in {count} place(s), in column(s) {shown}{more}. "
            "See 'failures' (column, check, value, row); fix the input or relax the "
            "bundle's policy.")


def parse_request(body: Any, methods: tuple[str, ...], query_method: str | None,
                  limits: Limits) -> tuple[list[Any], str]:
    """``(instances, method)`` from a parsed V1 request body."""
    if not isinstance(body, Mapping):
        raise HTTPProblem(422, "invalid_request",
                          f'Expected a JSON object {{"instances": [...]}}; got a '
                          f"{_json_type(body)}.")
    unknown = sorted(set(body) - _ENVELOPE_KEYS)
    if "instances" not in body or unknown:
        raise HTTPProblem(422, "invalid_request",
                          'The body must be {"instances": [record, ...]} with an optional '
                          f'"method"; unknown keys: {[truncate(k, 64) for k in unknown[:10]]}.',
                          allowed_keys=sorted(_ENVELOPE_KEYS))
    instances = body["instances"]
    if not isinstance(instances, list):
        raise HTTPProblem(422, "invalid_request",
                          f'"instances" must be a list of records; got a '
                          f"{_json_type(instances)}.")
    if len(instances) > limits.max_rows:
        raise HTTPProblem(413, "too_large",
                          f"{len(instances)} instances is over this server's limit of "
                          f"{limits.max_rows} rows per request; send smaller batches.",
                          limit="max_rows", found=len(instances), maximum=limits.max_rows)
    method = body.get("method", query_method)
    if method is None:
        method = "predict_proba" if "predict_proba" in methods else "predict"
    if not isinstance(method, str) or method not in methods:
        raise HTTPProblem(422, "invalid_request",
                          f"This model offers methods {list(methods)}; got {strict(method)!r}.",
                          methods=list(methods))
    return instances, method


def check_instances(instances: list[Any], names: frozenset[str], limits: Limits) -> None:
    """Refuse, before pandas sees them, records the contract engine must never get.

    Records that are not objects, nested values, integers beyond int64 and missing
    fields are contract failures (all reported at once); a record with too many keys
    or an over-long string is a 413.
    """
    if not _plainly_valid(instances, names, limits):
        _check_each(instances, names, limits)


def _plainly_valid(instances: list[Any], names: frozenset[str], limits: Limits) -> bool:
    """True only if :func:`_check_each` would find nothing, decided in whole-batch passes.

    Every pass runs in C (``map``, ``set``, ``compress``, ``max``), so a clean batch
    costs a fraction of the record-by-record loop; any doubt returns False and the
    loop then finds, orders and reports the failures.
    """
    if not instances:
        return True
    if not set(map(type, instances)) <= {dict}:
        return False
    if max(map(len, instances)) > limits.max_columns:
        return False
    if not all(map(operator.le, repeat(names), map(dict.keys, instances))):
        return False  # a missing field
    if max(map(len, set().union(*instances)), default=0) > limits.max_string_length:
        return False
    values = list(chain.from_iterable(map(dict.values, instances)))
    kinds = set(map(type, values))
    if not kinds <= _PLAIN:
        return False  # a nested value (or a type JSON never gives)
    if str in kinds and max(map(len, of_type(values, str))) > limits.max_string_length:
        return False
    if int in kinds:
        ints = list(of_type(values, int))
        return bool(min(ints) >= _INT64_MIN and max(ints) <= _INT64_MAX)
    return True


def _check_each(instances: list[Any], names: frozenset[str], limits: Limits) -> None:
    """Record by record: the failures of :func:`check_instances`, in row order."""
    failures: list[Failure] = []
    for row, record in enumerate(instances):
        if not isinstance(record, dict):
            failures.append(Failure("*", "record_type", _json_type(record), row))
            continue
        if len(record) > limits.max_columns:
            raise HTTPProblem(413, "too_large",
                              f"Record {row} has {len(record)} fields, over this server's "
                              f"limit of {limits.max_columns}.", limit="max_columns",
                              found=len(record), maximum=limits.max_columns, row=row)
        for key, value in record.items():
            if (type(value) is str and len(value) > limits.max_string_length) \
                    or len(key) > limits.max_string_length:
                _long_string(row, key, value, limits)
            if not isinstance(value, _SCALARS):
                failures.append(Failure(key, "not_a_scalar", _json_type(value), row))
            elif type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:
                failures.append(Failure(key, "integer_out_of_range", str(value), row))
        if not names <= record.keys():
            failures.extend(Failure(c, "missing_column", None, row)
                            for c in sorted(names - record.keys()))
    if failures:
        raise ContractViolation(failures)


def _long_string(row: int, key: str, value: Any, limits: Limits) -> None:
    long_key = len(key) > limits.max_string_length
    what = "key" if long_key else "value"
    length = len(key) if long_key else len(value)
    raise HTTPProblem(413, "too_large",
                      f"A {what} of {length} characters in record {row} is over this "
                      f"server's limit of {limits.max_string_length}.",
                      limit="max_string_length", found=length,
                      maximum=limits.max_string_length, row=row,
                      column=truncate(key, limits.max_echo))


def _json_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def predictions(outputs: np.ndarray, method: str, classes: tuple[str, ...] | None) -> list[Any]:
    """Outputs as JSON values; ``predict_proba`` rows as ``{class: probability}``."""
    if method == "predict_proba" and classes is not None and outputs.ndim == 2:
        return [dict(zip(classes, row, strict=True)) for row in outputs.tolist()]
    out: list[Any] = outputs.tolist()
    return out
