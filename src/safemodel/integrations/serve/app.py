"""The ASGI application: create_app (a whole server), create_router (to mount), run.

One structured JSON line per request goes to the ``safemodel.serve.access`` logger:
request id, model, version, fingerprint, method, rows, status, policy actions and
latency in milliseconds.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from os import PathLike
from typing import Any

import pandas as pd
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from safemodel.core.bundle import Scored
from safemodel.errors import SafeModelError
from safemodel.integrations.serve import _json
from safemodel.integrations.serve.limits import Limits
from safemodel.integrations.serve.metrics import CONTENT_TYPE, Metrics
from safemodel.integrations.serve.observer import DriftObserver
from safemodel.integrations.serve.protocol import (
    HTTPProblem,
    check_instances,
    error_body,
    from_error,
    parse_request,
    predictions,
)
from safemodel.integrations.serve.registry import ModelRegistry, ServedModel
from safemodel.monitoring.drift import DriftReport
from safemodel.monitoring.html import render as render_drift_html
from safemodel.monitoring.monitor import Monitor
from safemodel.store.store import BundleStore

__all__ = ["Server", "create_app", "create_router"]

access_log = logging.getLogger("safemodel.serve.access")
logger = logging.getLogger("safemodel.serve")

_JSON = "application/json"
# How long a read of drift waits for the batches answered before it to be observed.
_FLUSH_SECONDS = 2.0


def _response(status: int, body: Any, request_id: str,
              background: BackgroundTask | None = None) -> Response:
    return Response(_json.dumps(body), status_code=status, media_type=_JSON,
                    headers={"x-request-id": request_id}, background=background)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    if given and len(given) <= 128 and given.isprintable():
        return given
    return uuid.uuid4().hex


class Server:
    """The endpoints over one :class:`ModelRegistry`, its limits and its metrics.

    ``observer`` (a :class:`DriftObserver`) feeds each answered batch to the model's
    drift monitor from a background thread; :meth:`stop` ends it and the registry's
    refresh thread.
    """

    def __init__(self, registry: ModelRegistry, limits: Limits) -> None:
        self.registry = registry
        self.limits = limits
        self.metrics = Metrics(registry)
        self.observer = DriftObserver()

    def stop(self) -> None:
        """Stop the refresh thread, after observing the batches still queued for drift."""
        self.observer.stop()
        self.registry.stop()

    # ---------------------------------------------------------------- lookup

    def _served(self, name: str) -> ServedModel:
        self.registry.start()
        model = self.registry.models.get(name)
        if model is not None:
            return model
        if not self.registry.refreshed or name in self.registry.targets:
            failure = self.registry.failures.get(name)
            raise HTTPProblem(503, "not_ready",
                              failure.message if failure else
                              f"Model {name!r} is loading; retry shortly.",
                              model=name)
        known = sorted(self.registry.models)
        raise HTTPProblem(404, "model_not_found",
                          f"No model {name!r} behind alias {self.registry.alias!r}; "
                          f"served: {known[:50]}.", models=known)

    # ---------------------------------------------------------------- predict

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = _request_id(request)
        name = request.path_params["name"]
        record: dict[str, Any] = {"request_id": request_id, "model": name}
        model: ServedModel | None = None
        later: list[Callable[[], None]] = []
        status = 200
        try:
            model = self._served(name)
            record.update(version=model.version, fingerprint=model.fingerprint)
            raw = await self._body(request)
            try:
                body = _json.loads(raw)
            except _json.InvalidJSON as exc:
                raise HTTPProblem(400, "invalid_json", f"The body is not strict JSON: {exc}.") \
                    from None
            instances, method = parse_request(body, model.bundle.methods,
                                              request.query_params.get("method"), self.limits)
            record.update(method=method, rows=len(instances))
            answer = await run_in_threadpool(self._score, model, instances, method, record,
                                             later)
        except HTTPProblem as problem:
            status, answer = problem.status, problem.body(self.limits)
        except SafeModelError as exc:
            mapped = from_error(exc, self.limits)
            status, answer = mapped.status, mapped.body(self.limits)
            if mapped.error == "contract_violation" and model is not None:
                self.metrics.rejected.labels(name, model.version).inc(
                    max(len(mapped.extra["rows"]), 1))
        except Exception as exc:  # a bug: still a strict-JSON answer, and logged in full
            logger.exception("request %s to %r failed", request_id, name)
            status = 500
            answer = error_body("internal_error", f"{type(exc).__name__}: {exc}", self.limits,
                                request_id=request_id)
        seconds = time.perf_counter() - started
        error = answer.get("error") if status != 200 else None

        async def after_response() -> None:
            # Starlette runs this once the answer is sent, in the same task and before it
            # yields to the event loop: the client does not wait for the bookkeeping, and
            # any request read after this one (/metrics, drift) already sees it.
            for task in later:
                task()
            self._account(record, model, status, error, seconds)

        return _response(status, answer, request_id, BackgroundTask(after_response))

    async def _body(self, request: Request) -> bytes:
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        if media != _JSON and not media.endswith("+json"):
            raise HTTPProblem(415, "unsupported_media_type",
                              f"Send the body as application/json; got content type "
                              f"{content_type!r}.")
        maximum = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > maximum:
            raise self._too_big(int(declared))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > maximum:
                raise self._too_big(size)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, size: int) -> HTTPProblem:
        return HTTPProblem(413, "too_large",
                           f"The body has {size} bytes or more, over this server's limit of "
                           f"{self.limits.max_body_bytes}; send smaller batches.",
                           limit="max_body_bytes", found=size,
                           maximum=self.limits.max_body_bytes)

    def _score(self, model: ServedModel, instances: list[Any], method: str,
               record: dict[str, Any], later: list[Callable[[], None]]) -> dict[str, Any]:
        bundle = model.bundle
        check_instances(instances, bundle.contract.name_set, self.limits)
        # check_instances proved every record a dict: what as_frame would build, without
        # its per-record type check.
        frame = pd.DataFrame(instances) if instances else pd.DataFrame(
            columns=list(bundle.contract.names))
        scored = bundle.score(frame, method=method)
        report = scored.report
        record["policy"] = report.counts()
        later.append(lambda: self._observe(model, method, frame, scored))
        return {
            "predictions": predictions(scored.outputs, method, model.classes),
            "model_name": model.name,
            "model_version": model.version,
            "fingerprint": model.fingerprint,
            "method": method,
            "classes": None if model.classes is None or method != "predict_proba"
            else list(model.classes),
            "policy": report.to_dict(),
        }

    def _observe(self, model: ServedModel, method: str, frame: pd.DataFrame,
                 scored: Scored) -> None:
        """Count a scored batch in the metrics and hand it to the drift observer."""
        self.metrics.scored(model.name, model.version, scored.report)
        if model.monitor is not None and len(frame) and not self.observer.submit(
                model.monitor, frame, _monitor_scores(model, method, scored.outputs)):
            self.metrics.drift_dropped.labels(model.name, model.version).inc(len(frame))

    def _account(self, record: dict[str, Any], model: ServedModel | None, status: int,
                 error: Any, seconds: float) -> None:
        version = model.version if model is not None else ""
        name = record["model"] if model is not None else "(unknown)"
        self.metrics.requests.labels(name, version, str(status)).inc()
        self.metrics.latency.labels(name).observe(seconds)
        if not access_log.isEnabledFor(logging.INFO):
            return
        record.update(status=status, latency_ms=round(seconds * 1000, 3))
        if status != 200:
            record["error"] = error
        if model is None:
            record["model"] = _json.truncate(record["model"], 128)
        access_log.info(json.dumps(_json.strict(record), allow_nan=False))

    # ---------------------------------------------------------------- reads

    async def list_models(self, request: Request) -> Response:
        self.registry.start()
        models = self.registry.models
        body = {
            "alias": self.registry.alias,
            "models": [{"name": m.name, "version": m.version, "fingerprint": m.fingerprint,
                        "ready": True} for m in models.values()],
            "refused": [f.to_dict() for f in self.registry.failures.values()],
        }
        return _response(200, body, _request_id(request))

    async def describe(self, request: Request) -> Response:
        return self._read(request, lambda m: m.describe())

    async def schema(self, request: Request) -> Response:
        return self._read(request, lambda m: m.bundle.contract.to_json_schema(
            policy=m.bundle.policy))

    async def drift(self, request: Request) -> Response:
        request_id = _request_id(request)
        try:
            model = self._served(request.path_params["name"])
            if model.monitor is None:
                raise HTTPProblem(404, "no_profile",
                                  f"{model.name}=={model.version} has no reference profile; "
                                  "rebuild it with ModelBundle.from_training to monitor drift.")
            monitor = model.monitor
            report = await run_in_threadpool(self._drift_report, monitor)
        except HTTPProblem as problem:
            return _response(problem.status, problem.body(self.limits), request_id)
        if request.query_params.get("format") == "html":
            return HTMLResponse(render_drift_html(report), headers={"x-request-id": request_id})
        body = {"model_name": model.name, "model_version": model.version,
                "fingerprint": model.fingerprint, **report.to_dict(),
                "dropped_rows": self.observer.dropped(monitor)}
        return _response(200, _json.strict(body, max_string=1 << 16, max_items=1 << 20),
                         request_id)

    def _drift_report(self, monitor: Monitor) -> DriftReport:
        self.observer.flush(_FLUSH_SECONDS)
        return monitor.report()

    def _read(self, request: Request, what: Callable[[ServedModel], Any]) -> Response:
        request_id = _request_id(request)
        try:
            model = self._served(request.path_params["name"])
        except HTTPProblem as problem:
            return _response(problem.status, problem.body(self.limits), request_id)
        return _response(200, what(model), request_id)

    async def healthz(self, request: Request) -> Response:
        return _response(200, {"status": "alive"}, _request_id(request))

    async def readyz(self, request: Request) -> Response:
        self.registry.start()
        reg = self.registry
        ready = reg.ready()
        body = {
            "ready": ready,
            "alias": reg.alias,
            "models": {n: {"target": v, "served": getattr(reg.models.get(n), "version", None)}
                       for n, v in reg.targets.items()},
            "refused": [f.to_dict() for f in reg.failures.values()],
        }
        return _response(200 if ready else 503, body, _request_id(request))

    async def metrics_text(self, request: Request) -> Response:
        self.registry.start()
        return Response(await run_in_threadpool(self._metrics_text), media_type=CONTENT_TYPE)

    def _metrics_text(self) -> bytes:
        self.observer.flush(_FLUSH_SECONDS)
        return self.metrics.text()


def _monitor_scores(model: ServedModel, method: str, outputs: Any) -> Any:
    """The outputs in the form the monitor's profile records, or {} (inputs only)."""
    names = list(model.monitor.profile.scores) if model.monitor is not None else []
    if method == "predict_proba" and names and all(n.startswith("proba[") for n in names) \
            and getattr(outputs, "ndim", 0) == 2 and outputs.shape[1] == len(names):
        return outputs
    if method == "predict" and names == ["prediction"] and outputs.dtype.kind in "biuf":
        return outputs.astype("float64")
    return {}


_PREDICT_DOC = {
    "requestBody": {"required": True, "content": {_JSON: {"schema": {
        "type": "object", "required": ["instances"],
        "properties": {"instances": {"type": "array", "items": {"type": "object"}},
                       "method": {"type": "string"}}}}}},
}


def create_router(
    store: BundleStore | str | PathLike[str],
    alias: str = "production",
    *,
    limits: Limits | None = None,
    refresh_interval: float = 1.0,
    load_options: Mapping[str, Any] | None = None,
    monitor: bool = True,
) -> APIRouter:
    """The server's endpoints as a router to include in an existing FastAPI app.

    Parameters are those of :func:`create_app`. The router's ``server`` attribute is
    the :class:`Server` (``router.server.registry`` holds the served models). The
    refresh thread starts on the first request; call ``router.server.stop()`` on
    shutdown.

    Examples
    --------
    >>> app = FastAPI()                                              # doctest: +SKIP
    >>> app.include_router(create_router("models"), prefix="/ml")    # doctest: +SKIP
    """
    registry = ModelRegistry(store, alias, refresh_interval=refresh_interval,
                             load_options=load_options, monitor=monitor)
    server = Server(registry, limits or Limits())
    router = APIRouter()
    add = router.add_api_route
    add("/v1/models", server.list_models, methods=["GET"], summary="Models served")
    add("/v1/models/{name}/schema", server.schema, methods=["GET"],
        summary="JSON Schema of one input record")
    add("/v1/models/{name}/drift", server.drift, methods=["GET"],
        summary="Drift of the inputs served so far (JSON, or HTML with ?format=html)")
    add("/v1/models/{name}:predict", server.predict, methods=["POST"], summary="Predict",
        openapi_extra=_PREDICT_DOC)
    add("/v1/models/{name}", server.describe, methods=["GET"], summary="One model")
    add("/healthz", server.healthz, methods=["GET"], summary="Liveness")
    add("/readyz", server.readyz, methods=["GET"], summary="Readiness")
    add("/metrics", server.metrics_text, methods=["GET"], summary="Prometheus metrics")
    router.server = server  # type: ignore[attr-defined]
    return router


def create_app(
    store: BundleStore | str | PathLike[str],
    alias: str = "production",
    *,
    limits: Limits | None = None,
    refresh_interval: float = 1.0,
    load_options: Mapping[str, Any] | None = None,
    monitor: bool = True,
    title: str = "safemodel",
) -> FastAPI:
    """A FastAPI (ASGI) app serving every model behind ``alias`` in ``store``.

    Parameters
    ----------
    store : BundleStore or path
    alias : str, default "production"
    limits : Limits, optional
        Request limits (413 beyond them); ``Limits()`` by default.
    refresh_interval : float, default 1.0
        Seconds between reads of the aliases: a promotion or rollback is served
        within this delay plus the new version's load and verification.
    load_options : mapping, optional
        :class:`BundleStore` keyword arguments when ``store`` is a path.
    monitor : bool, default True
        Keep a drift monitor per model (``/metrics`` gauges, ``/v1/models/{name}/drift``).
    title : str
        The OpenAPI title.

    Returns
    -------
    fastapi.FastAPI
        ``app.state.server`` is the :class:`Server`. Mountable as a sub-application.

    Examples
    --------
    >>> import uvicorn                                                   # doctest: +SKIP
    >>> uvicorn.run(create_app("models", alias="production"), port=8000)  # doctest: +SKIP
    """
    router = create_router(store, alias, limits=limits, refresh_interval=refresh_interval,
                           load_options=load_options, monitor=monitor)
    server: Server = router.server  # type: ignore[attr-defined]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.registry.start()
        yield
        server.stop()

    app = FastAPI(title=title, lifespan=lifespan)
    app.include_router(router)
    app.state.server = server
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        return with_model_schemas(base_openapi(), server.registry)

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def with_model_schemas(document: Mapping[str, Any], registry: ModelRegistry,
                       prefix: str = "") -> dict[str, Any]:
    """``document`` with a request schema and a predict path per served model.

    Rebuilt on each call, so the document follows promotions.
    """
    doc = copy.deepcopy(dict(document))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    paths = doc.setdefault("paths", {})
    for name, model in sorted(registry.models.items()):
        record = model.bundle.contract.to_json_schema(policy=model.bundle.policy)
        record.pop("$schema", None)
        key = f"{_component(name)}_record"
        schemas[key] = record
        schemas[f"{_component(name)}_request"] = {
            "type": "object", "required": ["instances"],
            "properties": {"instances": {"type": "array",
                                         "items": {"$ref": f"#/components/schemas/{key}"}},
                           "method": {"enum": list(model.bundle.methods)}},
        }
        paths[f"{prefix}/v1/models/{name}:predict"] = {"post": {
            "summary": f"Predict with {name} ({model.version})",
            "operationId": f"predict_{_component(name)}",
            "tags": ["models"],
            "requestBody": {"required": True, "content": {_JSON: {"schema": {
                "$ref": f"#/components/schemas/{_component(name)}_request"}}}},
            "responses": {"200": {"description": "predictions, model identity and the "
                                                 "policy report"},
                          "422": {"description": "contract violation or scoring error"}},
        }}
    return doc


def _component(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_.-" else "_" for c in name)
