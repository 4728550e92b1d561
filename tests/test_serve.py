"""The model server, run for real: ``safemodel serve`` in a subprocess, talked to with httpx."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

import safemodel as sm
from helpers import NUMERIC, record
from test_serve_shift import EnvShift

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SRC = Path(sm.__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
COLUMNS = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
           "sex", "year"]
STATUSES = {200, 400, 404, 405, 413, 415, 422}


def strict_json(text: str) -> Any:
    """Parse as JSON that ``json.dumps(..., allow_nan=False)`` could have written."""
    def refuse(token: str) -> Any:
        raise AssertionError(f"non-strict JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Served:
    url: str
    store: sm.BundleStore
    log: Path
    client: Any

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(self.url + path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(self.url + path, **kw)

    def version(self, name: str) -> str | None:
        models = self.get("/v1/models").json()["models"]
        return next((m["version"] for m in models if m["name"] == name), None)


def _ready(url: str) -> bool:
    try:
        return bool(httpx.get(url + "/readyz", timeout=2).status_code == 200)
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, lr_pipe: Pipeline, hgb_pipe: Pipeline,
           penguins: tuple[pd.DataFrame, pd.Series]) -> Iterator[Served]:
    """A store of 3 models x 1-2 versions, served by ``python -m safemodel serve``."""
    X = penguins[0]
    root = tmp_path_factory.mktemp("served") / "store"
    store = sm.BundleStore(root)
    lr = sm.ModelBundle.from_training(lr_pipe, X, name="penguins", version="1.0.0",
                                      golden_rows=16)
    store.put(lr)
    store.put(sm.ModelBundle(lr.estimator, lr.contract, lr.policy, lr.golden, name="penguins",
                             version="1.1.0", profile=lr.profile))
    store.put(sm.ModelBundle.from_training(hgb_pipe, X, name="penguins-hgb", version="1.0.0",
                                           golden_rows=16))
    store.put(sm.ModelBundle(lr.estimator, lr.contract, lr.policy, lr.golden, name="shifty",
                             version="1.0.0", profile=lr.profile))
    store.put(sm.ModelBundle.from_training(EnvShift(lr_pipe), X, name="shifty",
                                           version="2.0.0", golden_rows=16))
    for name in ("penguins", "penguins-hgb", "shifty"):
        store.promote(name, "1.0.0")
    port = free_port()
    log = root.parent / "server.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]),
           "SAFEMODEL_TEST_SHIFT": "1"}
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "safemodel", "serve", str(root), "--port", str(port),
             "--refresh-interval", "0.2"], stdout=err, stderr=err, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url) or proc.poll() is not None, 120, "the server")
        assert proc.poll() is None, log.read_text()
        with httpx.Client(timeout=60) as client:
            yield Served(url, store, log, client)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


# ------------------------------------------------------------------ protocol


def test_models_are_listed_with_identity(server: Served) -> None:
    body = server.get("/v1/models").json()
    assert {m["name"]: m["version"] for m in body["models"]} == {
        "penguins": "1.0.0", "penguins-hgb": "1.0.0", "shifty": "1.0.0"}
    fingerprints = {m["name"]: m["fingerprint"] for m in body["models"]}
    assert fingerprints["penguins"] == server.store.get("penguins", "1.0.0").fingerprint
    one = server.get("/v1/models/penguins").json()
    assert one["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert one["methods"] == ["predict", "predict_proba", "decision_function"]
    assert one["columns"] == COLUMNS
    assert one["ready"] is True


def test_predict_labels_probabilities_and_reports_the_policy(
        server: Served, penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    X = penguins[0]
    rows = [record(X, 0), record(X, 200) | {"island": "Atlantis"}]
    r = server.post("/v1/models/penguins:predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = server.store.get("penguins", "1.0.0").predict_proba(rows)
    assert [list(p) for p in body["predictions"]] == [["Adelie", "Chinstrap", "Gentoo"]] * 2
    got = np.array([[p[c] for c in ("Adelie", "Chinstrap", "Gentoo")]
                    for p in body["predictions"]])
    np.testing.assert_array_equal(got, expected)
    assert body["model_name"] == "penguins"
    assert body["model_version"] == "1.0.0"
    assert body["method"] == "predict_proba"
    actions = {(a["column"], a["action"]): a["rows"] for a in body["policy"]["actions"]}
    assert any(col == "island" and rws == [1] for (col, _), rws in actions.items())
    assert r.headers["x-request-id"]


def test_method_is_selectable_by_query_or_body(
        server: Served, penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    rows = [record(penguins[0], i) for i in (0, 200, 300)]
    by_query = server.post("/v1/models/penguins:predict?method=predict", json={"instances": rows})
    by_body = server.post("/v1/models/penguins:predict",
                          json={"instances": rows, "method": "predict"})
    assert by_query.json()["predictions"] == by_body.json()["predictions"]
    assert by_query.json()["predictions"] == list(penguins[1].iloc[[0, 200, 300]])
    bad = server.post("/v1/models/penguins:predict", json={"instances": rows, "method": "fit"})
    assert bad.status_code == 422
    assert bad.json()["methods"] == ["predict", "predict_proba", "decision_function"]


def test_unknown_model_is_404_naming_the_known_ones(server: Served) -> None:
    r = server.post("/v1/models/churn:predict", json={"instances": []})
    assert r.status_code == 404
    assert r.json()["models"] == ["penguins", "penguins-hgb", "shifty"]
    assert server.get("/v1/models/churn/schema").status_code == 404


def test_missing_field_fails_alone_and_in_a_batch_alike(
        server: Served, penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    X = penguins[0]
    short = {k: v for k, v in record(X, 5).items() if k != "bill_depth_mm"}
    alone = server.post("/v1/models/penguins:predict", json={"instances": [short]})
    batch = server.post("/v1/models/penguins:predict",
                        json={"instances": [record(X, 0), short]})
    assert alone.status_code == batch.status_code == 422
    assert alone.json()["failures"] == [
        {"column": "bill_depth_mm", "check": "missing_column", "value": None, "row": 0}]
    assert batch.json()["failures"] == [
        {"column": "bill_depth_mm", "check": "missing_column", "value": None, "row": 1}]


def test_schema_and_openapi_name_every_models_columns(server: Served) -> None:
    schema = server.get("/v1/models/penguins/schema").json()
    assert schema["required"] == COLUMNS
    doc = server.get("/openapi.json").json()
    for name in ("penguins", "penguins-hgb", "shifty"):
        record_schema = doc["components"]["schemas"][f"{name}_record"]
        assert sorted(record_schema["properties"]) == sorted(COLUMNS)
        post = doc["paths"][f"/v1/models/{name}:predict"]["post"]
        assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"] \
            == f"#/components/schemas/{name}_request"


def test_health_readiness_and_drift(server: Served,
                                    penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    assert server.get("/healthz").json() == {"status": "alive"}
    ready = server.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    rows = [record(penguins[0], i) for i in range(0, 340, 5)]
    assert server.post("/v1/models/penguins-hgb:predict",
                       json={"instances": rows}).status_code == 200
    drift = server.get("/v1/models/penguins-hgb/drift").json()
    assert drift["model_name"] == "penguins-hgb"
    assert drift["rows"] >= len(rows)
    assert set(COLUMNS) <= set(drift["features"])
    html = server.get("/v1/models/penguins-hgb/drift?format=html")
    assert html.headers["content-type"].startswith("text/html")
    assert "bill_length_mm" in html.text


def test_metrics_expose_request_policy_and_drift_series(
        server: Served, penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    rows = [record(penguins[0], i) | {"sex": "unknown"} for i in range(40)]
    assert server.post("/v1/models/penguins:predict",
                       json={"instances": rows}).status_code == 200
    server.post("/v1/models/penguins:predict", json={"instances": [{"island": 1}]})
    text = server.get("/metrics").text
    assert 'safemodel_requests_total{model="penguins",status="200",version="1.0.0"}' in text
    assert 'safemodel_requests_total{model="penguins",status="422",version="1.0.0"}' in text
    assert 'safemodel_request_seconds_bucket{le="0.1",model="penguins"}' in text
    assert 'safemodel_policy_actions_total{action="unseen_to_missing",column="sex",' \
           'model="penguins"}' in text
    assert 'safemodel_rejected_rows_total{model="penguins",version="1.0.0"}' in text
    assert 'safemodel_drift_psi{feature="sex",model="penguins",role="feature",' \
           'version="1.0.0"}' in text
    assert 'safemodel_model_ready{model="penguins"} 1.0' in text


def test_one_json_log_line_per_request(server: Served,
                                       penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    r = server.post("/v1/models/penguins:predict", json={"instances": [record(penguins[0])]},
                    headers={"x-request-id": "req-log-check"})
    assert r.headers["x-request-id"] == "req-log-check"

    def logged() -> list[dict[str, Any]]:
        lines = server.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if "req-log-check" in line]

    wait_until(lambda: bool(logged()), 10, "the log line")
    (line,) = logged()
    assert line["model"] == "penguins"
    assert line["version"] == "1.0.0"
    assert line["rows"] == 1
    assert line["status"] == 200
    assert line["fingerprint"]
    assert line["latency_ms"] > 0
    assert line["policy"] == {}


# ------------------------------------------------------------------ hostile corpus


@dataclass
class Case:
    label: str
    body: bytes
    content_type: str | None = "application/json"
    model: str = "penguins"
    expect: frozenset[int] = frozenset(STATUSES - {404, 405})


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


def hostile_corpus(X: pd.DataFrame) -> list[Case]:
    base = record(X, 0)
    cases: list[Case] = []

    def one(label: str, row: Any, expect: set[int] | None = None) -> None:
        kw = {} if expect is None else {"expect": frozenset(expect)}
        cases.append(Case(label, _dump({"instances": [row]}), **kw))

    odd_values: list[Any] = ["abc", "1", "12.5", "", " ", [], [1, 2], {}, {"a": 1}, True, False,
                             None, 0, -1, 1.5, 1e308, -1e308, 2**63, -(2**63) - 1, 2**64,
                             "∞", "NaN", "😀" * 10, "x" * 5000, "\u0000", 10**20]
    for column in COLUMNS:
        for value in odd_values:
            one(f"{column}={value!r:.30}", base | {column: value}, STATUSES - {404, 405, 413})
        for token in ("NaN", "Infinity", "-Infinity"):
            raw = _dump({"instances": [base]}).replace(
                json.dumps(column).encode() + b": " + _dump(base[column]),
                json.dumps(column).encode() + b": " + token.encode(), 1)
            cases.append(Case(f"{column}={token} token", raw, expect=frozenset({400})))
        missing = {k: v for k, v in base.items() if k != column}
        one(f"missing {column}", missing, {422})
        cases.append(Case(f"missing {column} in a batch",
                          _dump({"instances": [base, missing]}), expect=frozenset({422})))
        one(f"{column} too long", base | {column: "y" * 20_000}, {413})
    for island in ("Atlantis", "biscoe", "BISCOE", " Biscoe", "Bïscoe", "", "🐧"):
        one(f"unseen island {island!r}", base | {"island": island}, {200})
    one("every feature 1e308", {**{c: 1e308 for c in NUMERIC}, "island": "Biscoe",
                                "sex": "male"}, {422})
    one("every feature -1e308", {**{c: -1e308 for c in NUMERIC if c != "year"}, "year": 2008,
                                 "island": "Biscoe", "sex": "male"}, {200, 422})
    one("year 2**63", base | {"year": 2**63}, {422})
    one("year -2**63-1", base | {"year": -(2**63) - 1}, {422})
    for n in (1, 10, 200, 990):
        one(f"{n} extra fields", base | {f"extra{i}": i for i in range(n)}, {200})
    one("2000 extra fields", base | {f"extra{i}": i for i in range(2000)}, {413})
    one("unicode extra key", base | {"κλειδί": "τιμή", "🔑": "🐧"}, {200})
    one("long extra key", base | {"k" * 20_000: 1}, {413})
    one("empty record", {}, {422})
    one("record is a list", list(base.values()), {422})
    one("record is a string", "island=Biscoe", {422})
    one("record is null", None, {422})
    one("record is a number", 3, {422})
    one("nested record", {"record": base}, {422})
    for label, raw in [
        ("empty body", b""), ("whitespace body", b"   "), ("not json", b"instances=1"),
        ("truncated json", b'{"instances": [{"island": "Bis'), ("bare null", b"null"),
        ("bare list", b"[]"), ("bare number", b"1"), ("bare string", b'"x"'),
        ("invalid utf-8", b'{"instances": [{"island": "\xff\xfe"}]}'),
        ("utf-8 bom", b"\xef\xbb\xbf" + _dump({"instances": [base]})),
        ("utf-16", json.dumps({"instances": [base]}).encode("utf-16")),
        ("duplicate key", b'{"instances": [{"island": "Biscoe", "island": "Dream"}]}'),
        ("duplicate envelope key", b'{"instances": [], "instances": []}'),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
        ("deep nesting in value", b'{"instances": [{"island": ' + b"[" * 50_000
         + b"]" * 50_000 + b"}]}"),
        ("huge integer literal", b'{"instances": [{"year": ' + b"9" * 5000 + b"}]}"),
        ("1e400 literal", b'{"instances": [{"bill_length_mm": 1e400}]}'),
        ("NaN envelope", b'{"instances": NaN}'),
        ("trailing garbage", _dump({"instances": [base]}) + b"xyz"),
        ("two documents", _dump({"instances": [base]}) * 2),
        ("single quotes", b"{'instances': []}"),
        ("control characters", b'{"instances": [{"island": "a\x01b"}]}'),
    ]:
        cases.append(Case(label, raw, expect=frozenset({400, 422, 413})))
    for label, obj in [
        ("empty object", {}), ("inputs instead of instances", {"inputs": [base]}),
        ("instances is an object", {"instances": base}), ("instances is a string",
                                                         {"instances": "x"}),
        ("instances is null", {"instances": None}), ("instances of numbers",
                                                     {"instances": [1, 2, 3]}),
        ("instances of lists", {"instances": [list(base.values())]}),
        ("extra envelope key", {"instances": [base], "signature_name": "x"}),
        ("method is a number", {"instances": [base], "method": 5}),
        ("method is unknown", {"instances": [base], "method": "fit"}),
        ("method is private", {"instances": [base], "method": "__class__"}),
    ]:
        cases.append(Case(label, _dump(obj), expect=frozenset({422})))
    cases.append(Case("no instances", _dump({"instances": []}), expect=frozenset({200})))
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded",
                         "application/xml", "multipart/form-data", "application/jsonx",
                         "json"):
        cases.append(Case(f"content type {content_type}", _dump({"instances": [base]}),
                          content_type=content_type, expect=frozenset({415})))
    cases.append(Case("content type with charset", _dump({"instances": [base]}),
                      content_type="application/json; charset=utf-8", expect=frozenset({200})))
    for model in ("nope", "PENGUINS", "penguins ", "💥", "a" * 2000, "..", "%00"):
        cases.append(Case(f"model {model[:20]!r}", _dump({"instances": [base]}), model=model,
                          expect=frozenset({404})))
    big_string = base | {"island": "z" * (5 * 1024 * 1024)}
    cases.append(Case("5 MB string", _dump({"instances": [big_string]}), expect=frozenset({413})))
    cases.append(Case("5 MB body of rows", _dump({"instances": [base] * 32_000}),
                      expect=frozenset({413})))
    cases.append(Case("50,000-row batch", _dump({"instances": [base] * 50_000}),
                      expect=frozenset({413})))
    rng = np.random.default_rng(0)
    pool = [*odd_values, "Biscoe", "Dream", "female", 42.0, 2009]
    for i in range(60):
        rows = [record(X, int(j)) for j in rng.integers(0, len(X), 5)]
        for row in rows:
            for column in rng.choice(COLUMNS, 2, replace=False):
                row[str(column)] = pool[int(rng.integers(0, len(pool)))]
        cases.append(Case(f"random batch {i}", _dump({"instances": rows})))
    return cases


def test_hostile_corpus_never_gets_a_500(server: Served,
                                         penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    cases = hostile_corpus(penguins[0])
    assert len(cases) >= 300
    wrong = []
    for case in cases:
        headers = {} if case.content_type is None else {"content-type": case.content_type}
        r = server.post(f"/v1/models/{case.model}:predict", content=case.body,
                        headers=headers)
        body = strict_json(r.text)  # every answer is strict JSON
        if r.status_code != 200:  # echoed values are truncated
            assert len(r.content) < 64 * 1024, (case.label, len(r.content))
        if r.status_code not in case.expect:
            wrong.append((case.label, r.status_code, r.text[:300]))
        if r.status_code != 200:
            assert isinstance(body["error"], str), case.label
            assert body["message"], case.label
    assert wrong == [], "\n".join(map(str, wrong))
    assert server.get("/readyz").status_code == 200  # the server survived it all


def test_contract_failures_echo_values_truncated(server: Served,
                                                 penguins: tuple[pd.DataFrame, pd.Series]
                                                 ) -> None:
    row = record(penguins[0]) | {"bill_length_mm": "x" * 9000}
    r = server.post("/v1/models/penguins:predict", json={"instances": [row]})
    assert r.status_code == 422
    (failure,) = r.json()["failures"]
    assert failure["column"] == "bill_length_mm"
    assert failure["row"] == 0
    assert len(failure["value"]) < 300
    assert "9000 characters" in failure["value"]


# ------------------------------------------------------------------ hot swap


def test_promotion_and_rollback_under_load_fail_no_request(
        server: Served, penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    rows = [record(penguins[0], i) for i in (0, 150, 300)]
    store = server.store
    identity = {str(v): store.get("penguins", str(v)).fingerprint
                for v in store.versions("penguins")}
    seen: list[tuple[int, str | None, str | None]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                r = client.post(server.url + "/v1/models/penguins:predict",
                                json={"instances": rows})
                body = r.json()
                seen.append((r.status_code, body.get("model_version"), body.get("fingerprint")))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        wait_until(lambda: len(seen) > 20, 30, "load before the promotion")
        store.promote("penguins", "1.1.0")
        wait_until(lambda: server.version("penguins") == "1.1.0", 30, "the promotion")
        mark = len(seen)
        wait_until(lambda: len(seen) > mark + 20, 30, "load after the promotion")
        store.rollback("penguins")
        wait_until(lambda: server.version("penguins") == "1.0.0", 30, "the rollback")
        mark = len(seen)
        wait_until(lambda: len(seen) > mark + 20, 30, "load after the rollback")
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    assert [s for s in seen if s[0] != 200] == []
    versions = [v for _, v, _ in seen]
    assert {"1.0.0", "1.1.0"} <= set(versions)
    # never half-switched: every answer's fingerprint is the one of its version
    assert all(identity[v] == f for _, v, f in seen if v is not None)


def test_version_failing_verification_here_is_not_served(server: Served) -> None:
    store = server.store
    store.promote("shifty", "2.0.0")  # verifies in this process, where it reproduces

    def refused() -> bool:
        return any(f["name"] == "shifty" and f["version"] == "2.0.0"
                   for f in server.get("/readyz").json()["refused"])

    try:
        wait_until(refused, 60, "the server to refuse shifty 2.0.0")
        ready = server.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["models"]["shifty"] == {"target": "2.0.0", "served": "1.0.0"}
        assert server.version("shifty") == "1.0.0"
        r = server.post("/v1/models/shifty:predict", json={"instances": []})
        assert r.status_code == 200
        assert r.json()["model_version"] == "1.0.0"
        text = server.get("/metrics").text
        assert 'safemodel_model_refused{error="GoldenMismatchError",model="shifty",' \
               'version="2.0.0"} 1.0' in text
        assert 'safemodel_model_ready{model="shifty"} 0.0' in text
    finally:
        store.rollback("shifty")
    wait_until(lambda: server.get("/readyz").status_code == 200, 30, "ready again")


# ------------------------------------------------------------------ mounting, CLI


def test_mounted_in_an_existing_app(tmp_path: Path, lr_bundle: sm.ModelBundle,
                                    penguins: tuple[pd.DataFrame, pd.Series]) -> None:
    import uvicorn
    from fastapi import FastAPI

    from safemodel.serve import create_app, create_router

    store = sm.BundleStore(tmp_path / "store")
    store.put(lr_bundle)
    store.promote(lr_bundle.name, "1.0.0")
    host = FastAPI()
    host.mount("/sub", create_app(store))
    router = create_router(store)
    host.include_router(router, prefix="/ml")
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(host, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for prefix in ("/sub", "/ml"):
            wait_until(lambda p=prefix: _ready(url + p), 60, f"{prefix} ready")
            r = httpx.post(f"{url}{prefix}/v1/models/{lr_bundle.name}:predict",
                           json={"instances": [record(penguins[0])]}, timeout=30)
            assert r.status_code == 200
            assert r.json()["model_version"] == "1.0.0"
    finally:
        uv.should_exit = True
        thread.join(15)
        router.server.registry.stop()  # type: ignore[attr-defined]


def test_serve_command_refuses_a_missing_store(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from safemodel.cli import main

    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "not a store folder" in capsys.readouterr().err
