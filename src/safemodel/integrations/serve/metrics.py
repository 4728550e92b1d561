"""Prometheus metrics of one server (a registry of its own, so apps never collide).

Request series are counted as requests finish; model state and drift gauges are
computed when ``/metrics`` is scraped, from the registry and each model's monitor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from safemodel.core.report import PolicyReport

if TYPE_CHECKING:
    from safemodel.integrations.serve.registry import ModelRegistry

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_STATUS_CODE = {"ok": 0.0, "warn": 1.0, "alert": 2.0, "insufficient": -1.0}


class Metrics:
    """The counters and histogram a server updates, and its ``/metrics`` text."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "safemodel_requests", "Prediction and model requests answered.",
            ["model", "version", "status"], registry=self.registry)
        self.latency = Histogram(
            "safemodel_request_seconds", "Time to answer a prediction request.",
            ["model"], registry=self.registry,
            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0))
        self.rows = Counter(
            "safemodel_rows_scored", "Rows scored.", ["model", "version"],
            registry=self.registry)
        self.rejected = Counter(
            "safemodel_rejected_rows", "Rows refused by the contract (422 answers).",
            ["model", "version"], registry=self.registry)
        self.actions = Counter(
            "safemodel_policy_actions", "Rows on which the policy acted, by column and action.",
            ["model", "column", "action"], registry=self.registry)
        self.drift_dropped = Counter(
            "safemodel_drift_dropped_rows",
            "Rows answered but not observed for drift: the observation queue was full.",
            ["model", "version"], registry=self.registry)
        self.registry.register(_StateCollector(registry))

    def scored(self, model: str, version: str, report: PolicyReport) -> None:
        self.rows.labels(model, version).inc(report.rows)
        for action in report.actions:
            if action.count:
                self.actions.labels(model, action.column, action.action).inc(action.count)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Model state and drift, read at scrape time."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        reg = self._registry
        served = GaugeMetricFamily(
            "safemodel_model_info", "The version served per model (value 1).",
            labels=["model", "version", "fingerprint"])
        ready = GaugeMetricFamily(
            "safemodel_model_ready",
            "1 when the alias target is served; 0 while loading or after a refused target.",
            labels=["model"])
        refused = GaugeMetricFamily(
            "safemodel_model_refused",
            "1 for an alias target not served because it failed to load or verify.",
            labels=["model", "version", "error"])
        psi = GaugeMetricFamily(
            "safemodel_drift_psi", "PSI of production inputs and scores against training.",
            labels=["model", "version", "feature", "role"])
        status = GaugeMetricFamily(
            "safemodel_drift_status", "Drift verdict: -1 insufficient rows, 0 ok, 1 warn, "
            "2 alert.", labels=["model", "version", "feature", "role"])
        observed = GaugeMetricFamily(
            "safemodel_drift_rows", "Rows observed by the drift monitor of the served version.",
            labels=["model", "version"])
        models, failures, targets = reg.models, reg.failures, reg.targets
        for name in sorted(set(targets) | set(models)):
            model = models.get(name)
            ok = model is not None and model.version == targets.get(name) \
                and name not in failures
            ready.add_metric([name], 1.0 if ok else 0.0)
            if model is None:
                continue
            served.add_metric([name, model.version, model.fingerprint], 1.0)
            if model.monitor is None:
                continue
            observed.add_metric([name, model.version], float(model.monitor.rows_observed))
            report = model.monitor.report()
            for result in report.results:
                labels = [name, model.version, result.name, result.role]
                if result.psi is not None:
                    psi.add_metric(labels, result.psi)
                status.add_metric(labels, _STATUS_CODE.get(result.status, -1.0))
        for failure in failures.values():
            refused.add_metric([failure.name, failure.version or "", failure.error], 1.0)
        yield from (served, ready, refused, psi, status, observed)
