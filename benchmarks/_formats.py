"""The peers safemodel is compared with, each optional, and how each saves and loads.

Peers are not dependencies of safemodel; a peer that is not installed is reported as
"not installed" and its measurements are skipped.
"""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
from _pipelines import penguins

import safemodel as sm

__all__ = ["FORMATS", "Format", "folder_size", "peer", "peer_versions"]

PEERS = ("joblib", "skops", "mlflow", "pyinstrument", "psutil")
_DISTRIBUTIONS = {"mlflow": "mlflow-skinny"}


def _offline_mlflow() -> None:
    """Keep MLflow from phoning home (``run.py`` points it at a local file store)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")


@functools.cache
def peer(name: str) -> ModuleType | None:
    """The peer's module, or ``None`` when it is not installed (or fails to import)."""
    if name == "mlflow":
        _offline_mlflow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module(name)
            if name == "mlflow":
                importlib.import_module("mlflow.sklearn")
                importlib.import_module("mlflow.pyfunc")
            if name == "skops":
                importlib.import_module("skops.io")
    except Exception:
        return None
    return module


def peer_versions() -> dict[str, str]:
    """Installed version of each peer, or "not installed"."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PEERS:
        dist = _DISTRIBUTIONS.get(name, name)
        try:
            out[dist] = version(dist) if peer(name) is not None else "not installed"
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


@dataclass(frozen=True)
class Format:
    """One way to persist a model: a label, a peer it needs, and save/load functions."""

    label: str
    needs: str | None
    save: Callable[[sm.ModelBundle, Path], Path]  # (bundle, folder) -> file or folder
    load: Callable[[Path], Any]

    @property
    def available(self) -> bool:
        return self.needs is None or peer(self.needs) is not None


def _save_safemodel(bundle: sm.ModelBundle, folder: Path) -> Path:
    path = folder / f"{bundle.name}.safemodel"
    bundle.save(path, overwrite=True)
    return path


def _save_joblib(bundle: sm.ModelBundle, folder: Path) -> Path:
    import joblib

    path = folder / f"{bundle.name}.joblib"
    joblib.dump(bundle.estimator, path)
    return path


def _load_joblib(path: Path) -> Any:
    import joblib

    return joblib.load(path)


def _save_cloudpickle(bundle: sm.ModelBundle, folder: Path) -> Path:
    path = folder / f"{bundle.name}.pkl"
    path.write_bytes(cloudpickle.dumps(bundle.estimator))
    return path


def _load_cloudpickle(path: Path) -> Any:
    return cloudpickle.loads(path.read_bytes())


def _save_skops(bundle: sm.ModelBundle, folder: Path) -> Path:
    import skops.io

    path = folder / f"{bundle.name}.skops"
    skops.io.dump(bundle.estimator, path)
    return path


_SKOPS_TRUSTED: dict[Path, list[str]] = {}


def _load_skops(path: Path) -> Any:
    import skops.io

    # A service audits the type list once, when it adopts the file; not on every load.
    trusted = _SKOPS_TRUSTED.get(path)
    if trusted is None:
        trusted = _SKOPS_TRUSTED[path] = skops.io.get_untrusted_types(file=path)
    return skops.io.load(path, trusted=trusted)


def _save_mlflow(bundle: sm.ModelBundle, folder: Path) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    path = folder / f"{bundle.name}.mlflow"
    X = penguins()[0]  # the training frame, as MLflow's docs recommend
    estimator = bundle.estimator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow warns about pickles and int columns
        signature = infer_signature(X, estimator.predict_proba(X))
        mlflow.sklearn.save_model(
            estimator, str(path), serialization_format="cloudpickle", signature=signature,
            pyfunc_predict_fn="predict_proba",
            # Explicit requirements: inferring them spawns a subprocess per save.
            pip_requirements=["scikit-learn", "cloudpickle"],
        )
    return path


def _load_mlflow(path: Path) -> Any:
    import mlflow.pyfunc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlflow.pyfunc.load_model(str(path))


FORMATS: dict[str, Format] = {
    "safemodel": Format("safemodel", None, _save_safemodel, sm.load),
    "joblib": Format("joblib", "joblib", _save_joblib, _load_joblib),
    "cloudpickle": Format("cloudpickle", None, _save_cloudpickle, _load_cloudpickle),
    "skops": Format("skops", "skops", _save_skops, _load_skops),
    "mlflow": Format("MLflow (cloudpickle)", "mlflow", _save_mlflow, _load_mlflow),
}


def folder_size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
