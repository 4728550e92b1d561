"""Store, register and serve bundles with MLflow, keeping every safemodel check.

A bundle saved with :func:`save_model` or logged with :func:`log_model` is an MLflow
model with two flavors:

- ``safemodel``: the bundle file itself (``bundle.safemodel``, signed, hashed), the
  scoring method chosen at logging time, and the bundle's identity;
- ``python_function``: loaded by :func:`safemodel.load` (integrity, signature, golden
  verification), so stock ``mlflow.pyfunc.load_model`` refuses a model whose outputs
  changed, and whose ``predict`` runs the contract and policy before the estimator.

::

    import safemodel.mlflow

    info = safemodel.mlflow.log_model(bundle, "model", registered_model_name="penguins")
    model = mlflow.pyfunc.load_model("models:/penguins@champion")  # verified here
    model.predict(frame)              # DataFrame with one column per class
    bundle = safemodel.mlflow.load_model("models:/penguins@champion")  # the ModelBundle

The MLflow signature lists the contract's columns and types, the input example is taken
from the golden rows. This module needs MLflow (``pip install "safemodel[mlflow]"``);
``import safemodel`` never imports it.
"""

from __future__ import annotations

import inspect as _inspect
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from safemodel.core.bundle import ModelBundle
from safemodel.errors import BundleFormatError, InvalidArgument
from safemodel.integrations.plan import scoring_method
from safemodel.io.archive import load as _load_bundle

if TYPE_CHECKING:
    from mlflow.models import Model, ModelSignature
    from mlflow.models.model import ModelInfo

__all__ = ["BUNDLE_FILE", "FLAVOR_NAME", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "safemodel"
"""Name of the MLflow flavor that holds the bundle file."""

BUNDLE_FILE = "bundle.safemodel"
"""The bundle's file inside an MLflow model folder."""

_EXAMPLE_ROWS = 5
# ``safemodel.load`` keywords a caller may pass through ``model_config`` at pyfunc load
# time. ``verify`` is not one of them: a pyfunc model is always golden-verified.
_NOT_CONFIGURABLE = frozenset({"path", "verify"})


def _mlflow() -> Any:
    try:
        import mlflow
        import mlflow.pyfunc
    except ImportError as exc:
        raise ImportError(
            'safemodel.mlflow needs MLflow; install it with pip install "safemodel[mlflow]".'
        ) from exc
    return mlflow


# ------------------------------------------------------------------ signature


def _column_type(dtype: str, kind: str) -> Any:
    """The MLflow type of one contract column.

    MLflow's own type check runs before ``predict`` and refuses what the policy exists
    to handle: a missing value in an integer column (float NaN, or ``pd.NA``) cannot
    become ``long``. Integer, category-dtype and other columns are therefore declared
    ``Any``; the contract checks their type right after, with its own message.
    """
    from mlflow.types.schema import AnyType, DataType

    if kind == "boolean" and dtype in ("bool", "boolean"):
        return DataType.boolean
    if kind == "number" and dtype in ("float64", "Float64"):
        return DataType.double
    if kind == "number" and dtype in ("float32", "Float32"):
        return DataType.float
    if kind in ("categorical", "text") and dtype in ("str", "object", "string"):
        return DataType.string
    if kind == "datetime" and dtype.startswith("datetime64") and "," not in dtype:
        return DataType.datetime
    return AnyType()


def _output_labels(bundle: ModelBundle, method: str) -> list[str] | None:
    """Column names of a 2-D output (one per class), or None for a 1-D one."""
    reference = np.asarray(bundle.golden.outputs[method])
    if reference.ndim == 1:
        return None
    classes = getattr(bundle.estimator, "classes_", None)
    if (method != "predict" and isinstance(classes, np.ndarray) and classes.ndim == 1
            and len(classes) == reference.shape[1]):
        return [str(c) for c in classes.tolist()]
    return [str(j) for j in range(reference.shape[1])]


def _output_type(values: np.ndarray) -> Any:
    from mlflow.types.schema import AnyType, DataType

    kinds = {"f": DataType.double, "i": DataType.long, "u": DataType.long,
             "b": DataType.boolean, "U": DataType.string}
    if values.dtype.kind in kinds:
        return kinds[values.dtype.kind]
    if values.dtype.kind == "O" and all(isinstance(v, str) for v in values.ravel().tolist()):
        return DataType.string
    return AnyType()


def _signature(bundle: ModelBundle, method: str) -> ModelSignature:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec(_column_type(c.dtype, c.kind), c.name)
                     for c in bundle.contract.columns])
    reference = np.asarray(bundle.golden.outputs[method])
    labels = _output_labels(bundle, method)
    kind = _output_type(reference)
    outputs = Schema([ColSpec(kind)] if labels is None
                     else [ColSpec(kind, label) for label in labels])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _input_example(bundle: ModelBundle) -> pd.DataFrame:
    """The first sampled golden rows (not the edge cases: those show what to avoid)."""
    inputs = bundle.golden.inputs
    sampled = max(len(inputs) - bundle.golden.edge_rows, 1)
    example = inputs.iloc[: min(sampled, _EXAMPLE_ROWS)].reset_index(drop=True)
    # MLflow compares the column index with a range, which pandas 3 deprecates for a
    # string-dtype index (a warning, an error under strict settings); object is exact.
    example.columns = pd.Index(list(example.columns), dtype=object)
    return example


# ----------------------------------------------------------------------- save


def _requirements(bundle: ModelBundle) -> list[str]:
    """The packages the bundle was built with, pinned: its golden outputs were recorded
    with exactly these, so an environment built from them reproduces."""
    pins = []
    for package, version in sorted(bundle.environment.items()):
        if package in ("python", "platform") or not version:
            continue
        pins.append(f"{package}=={version}")
    return pins


def _write_environment(path: Path, bundle: ModelBundle, pip_requirements: Any,
                       extra_pip_requirements: Any) -> None:
    from mlflow.utils.environment import (
        _CONDA_ENV_FILE_NAME,
        _CONSTRAINTS_FILE_NAME,
        _PYTHON_ENV_FILE_NAME,
        _REQUIREMENTS_FILE_NAME,
        _process_pip_requirements,
        _PythonEnv,
        _validate_env_arguments,
    )
    from mlflow.utils.yaml_utils import write_yaml

    _validate_env_arguments(None, pip_requirements, extra_pip_requirements)
    defaults = None if pip_requirements is not None else _requirements(bundle)
    conda_env, pip_reqs, constraints = _process_pip_requirements(
        defaults, pip_requirements, extra_pip_requirements)
    write_yaml(str(path), _CONDA_ENV_FILE_NAME, conda_env)
    if constraints:
        (path / _CONSTRAINTS_FILE_NAME).write_text("\n".join(constraints))
    (path / _REQUIREMENTS_FILE_NAME).write_text("\n".join(pip_reqs))
    _PythonEnv.current().to_yaml(str(path / _PYTHON_ENV_FILE_NAME))


def _bundle_into(bundle: ModelBundle | str | PathLike[str], target: Path,
                 signing_key: Any) -> ModelBundle:
    """Write the bundle file to ``target``; a path is loaded (verified) and copied as is,
    so its signature travels with it."""
    if isinstance(bundle, ModelBundle):
        bundle.save(target, signing_key=signing_key)
        return bundle
    if isinstance(bundle, str | PathLike):
        loaded = _load_bundle(bundle)
        shutil.copyfile(bundle, target)
        return loaded
    raise InvalidArgument.of("save_model", "bundle", "a ModelBundle or a bundle file path",
                             bundle)


def save_model(
    bundle: ModelBundle | str | PathLike[str],
    path: str | PathLike[str],
    *,
    method: str | None = None,
    mlflow_model: Model | None = None,
    pip_requirements: Sequence[str] | str | None = None,
    extra_pip_requirements: Sequence[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    signing_key: Any = None,
    **_ignored: Any,
) -> None:
    """Save a bundle as an MLflow model folder (``safemodel`` and ``python_function``).

    Parameters
    ----------
    bundle : ModelBundle, str or path-like
        A bundle, or the path of a bundle file (loaded and verified, then copied byte
        for byte, signature included).
    path : str or path-like
        A folder that does not exist yet.
    method : {"predict_proba", "predict", "decision_function"}, optional
        What the pyfunc ``predict`` returns. Defaults to ``predict_proba`` when the
        estimator has it, else ``predict``.
    mlflow_model : mlflow.models.Model, optional
        The model configuration to add the flavors to (``log_model`` passes its own).
    pip_requirements, extra_pip_requirements : list of str or str, optional
        As in MLflow's flavors. By default the packages recorded in
        ``bundle.environment`` are pinned to their build-time versions.
    metadata : dict, optional
        Extra MLflow model metadata (the bundle's JSON Schema is always added).
    signing_key : optional
        Key to sign a ``ModelBundle`` with (see :meth:`ModelBundle.save`).

    Raises
    ------
    InvalidArgument
        A bad ``bundle`` or ``method``.
    SafeModelError
        ``path`` exists, or a bundle file fails its checks.

    Examples
    --------
    >>> safemodel.mlflow.save_model(bundle, "penguins-model")  # doctest: +SKIP
    >>> mlflow.pyfunc.load_model("penguins-model").predict(frame)  # doctest: +SKIP
    """
    mlflow = _mlflow()
    from mlflow.models.model import MLMODEL_FILE_NAME
    from mlflow.models.utils import _save_example

    folder = Path(path)
    if folder.exists():
        raise InvalidArgument(
            f"{str(folder)!r} already exists; save_model writes a new MLflow model folder. "
            "Choose another path or remove it first.",
            argument="path", expected="a path that does not exist", found=str(folder))
    if method is not None and method not in ("predict", "predict_proba", "decision_function"):
        raise InvalidArgument.of("save_model", "method",
                                 "one of ['predict', 'predict_proba', 'decision_function']",
                                 method)
    folder.mkdir(parents=True)
    try:
        loaded = _bundle_into(bundle, folder / BUNDLE_FILE, signing_key)
        chosen = scoring_method(loaded, method)
        model = mlflow_model if mlflow_model is not None else mlflow.models.Model()
        model.signature = _signature(loaded, chosen)
        _save_example(model, _input_example(loaded), str(folder))
        model.metadata = {**(model.metadata or {}), **dict(metadata or {}),
                          "safemodel": {"input_json_schema": loaded.contract.to_json_schema()}}
        model.add_flavor(FLAVOR_NAME, bundle=BUNDLE_FILE, method=chosen, bundle_name=loaded.name,
                         bundle_version=str(loaded.version), fingerprint=loaded.fingerprint,
                         safemodel_version=loaded.environment.get("safemodel"))
        mlflow.pyfunc.add_to_model(model, loader_module=__name__, conda_env="conda.yaml",
                                   python_env="python_env.yaml")
        model.save(str(folder / MLMODEL_FILE_NAME))
        _write_environment(folder, loaded, pip_requirements, extra_pip_requirements)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def log_model(
    bundle: ModelBundle | str | PathLike[str],
    name: str,
    *,
    registered_model_name: str | None = None,
    method: str | None = None,
    pip_requirements: Sequence[str] | str | None = None,
    extra_pip_requirements: Sequence[str] | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    signing_key: Any = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log a bundle to the active MLflow run (one is started if none is), optionally
    registering it.

    Parameters
    ----------
    bundle : ModelBundle, str or path-like
    name : str
        The model's name within the run.
    registered_model_name : str, optional
        Also register the model under this name (a new version of it).
    method, pip_requirements, extra_pip_requirements, metadata, signing_key
        See :func:`save_model`.
    **kwargs
        Passed to ``mlflow.models.Model.log`` (``await_registration_for``, ``tags``...).

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``.model_uri`` loads with :func:`load_model` and ``mlflow.pyfunc.load_model``.

    Examples
    --------
    >>> with mlflow.start_run():  # doctest: +SKIP
    ...     info = safemodel.mlflow.log_model(bundle, "model",
    ...                                       registered_model_name="penguins")
    """
    mlflow = _mlflow()
    info: ModelInfo = mlflow.models.Model.log(
        artifact_path=None, name=name, flavor=sys.modules[__name__],
        registered_model_name=registered_model_name,
        bundle=bundle, method=method, pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements, metadata=metadata,
        signing_key=signing_key, **kwargs)
    return info


# ----------------------------------------------------------------------- load


def _flavor(folder: Path) -> Mapping[str, Any]:
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    conf: Mapping[str, Any] | None = Model.load(
        str(folder / MLMODEL_FILE_NAME)).flavors.get(FLAVOR_NAME)
    if conf is None:
        raise BundleFormatError(
            f"The MLflow model at {str(folder)!r} has no {FLAVOR_NAME!r} flavor; it was not "
            "saved by safemodel.mlflow. For a scikit-learn model, build a bundle with "
            "ModelBundle.from_training(mlflow.sklearn.load_model(uri), X_train, name=...).")
    return conf


def _load_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    allowed = set(_inspect.signature(_load_bundle).parameters) - _NOT_CONFIGURABLE
    given = dict(options or {})
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise InvalidArgument.of("load_model", "options", f"keywords among {sorted(allowed)}",
                                 unknown)
    return given


def load_model(
    model_uri: str,
    *,
    dst_path: str | PathLike[str] | None = None,
    **load_options: Any,
) -> ModelBundle:
    """Load the :class:`ModelBundle` of an MLflow model logged by :func:`log_model`.

    Parameters
    ----------
    model_uri : str
        Any MLflow model URI: a local folder, ``runs:/<run_id>/<name>``,
        ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/<model_id>``.
    dst_path : str or path-like, optional
        Where to download the model's files (a temporary folder, removed after
        loading, by default).
    **load_options
        Passed to :func:`safemodel.load` (``signing_key``, ``trusted_keys``,
        ``trust``, ``allowed_modules``, ``environment``); golden verification always
        runs. MLflow's own loaders (``mlflow.pyfunc.load_model``, ``spark_udf``,
        ``mlflow models serve``) use :func:`safemodel.load`'s defaults: the serving
        machine trusts the publisher's key through its trust store
        (``safemodel trust add``) or ``$SAFEMODEL_TRUSTED_KEYS``.

    Returns
    -------
    ModelBundle

    Raises
    ------
    BundleFormatError
        The model has no ``safemodel`` flavor.
    IntegrityError, GoldenMismatchError
        As :func:`safemodel.load`.
    """
    mlflow = _mlflow()
    options = _load_options(load_options)
    with tempfile.TemporaryDirectory(prefix="safemodel-mlflow-") as scratch:
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=str(dst_path or scratch)))
        conf = _flavor(local)
        return _load_bundle(local / str(conf["bundle"]), **options)


class _PyfuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: the verified bundle and its method."""

    def __init__(self, bundle: ModelBundle, method: str) -> None:
        self.bundle = bundle
        self.method = method
        self._labels = _output_labels(bundle, method)

    def predict(self, model_input: Any, params: Mapping[str, Any] | None = None) -> Any:
        outputs = getattr(self.bundle, self.method)(model_input)
        if self._labels is None:
            return outputs
        return pd.DataFrame(outputs, columns=self._labels)

    def get_raw_model(self) -> ModelBundle:
        return self.bundle


def _load_pyfunc(data_path: str, model_config: Mapping[str, Any] | None = None) -> _PyfuncModel:
    # MLflow passes the model folder (no ``data`` key in the pyfunc flavor), so the
    # ``safemodel`` flavor stays the one place that names the bundle file and method.
    folder = Path(data_path)
    conf = _flavor(folder)
    bundle = _load_bundle(folder / str(conf["bundle"]), **_load_options(model_config))
    return _PyfuncModel(bundle, scoring_method(bundle, str(conf["method"])))

