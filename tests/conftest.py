"""Shared fixtures: real palmer-penguins pipelines and bundles built from them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

import safemodel as sm
from helpers import hgb_pipeline, lr_pipeline, penguins_frame

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session", autouse=True)
def safemodel_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A per-session safemodel home: tests never read or write ~/.config/safemodel.

    Exported in ``os.environ`` so subprocesses, Spark executors and Dask workers started
    by the tests sign and trust with the same key (the same user saves and loads).
    """
    home = tmp_path_factory.mktemp("safemodel-home")
    saved = {name: os.environ.pop(name, None) for name in
             ("SAFEMODEL_HOME", "SAFEMODEL_TRUSTED_KEYS", "SAFEMODEL_SIGNING_KEY")}
    os.environ["SAFEMODEL_HOME"] = str(home)
    yield home
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value



@pytest.fixture(scope="session")
def penguins() -> tuple[pd.DataFrame, pd.Series]:
    return penguins_frame()


@pytest.fixture(scope="session")
def lr_pipe(penguins: tuple[pd.DataFrame, pd.Series]) -> Pipeline:
    return lr_pipeline(*penguins)


@pytest.fixture(scope="session")
def hgb_pipe(penguins: tuple[pd.DataFrame, pd.Series]) -> Pipeline:
    return hgb_pipeline(*penguins)


@pytest.fixture(scope="session")
def lr_bundle(lr_pipe: Pipeline, penguins: tuple[pd.DataFrame, pd.Series]) -> sm.ModelBundle:
    return sm.ModelBundle.from_training(lr_pipe, penguins[0], name="penguins-lr", version="1.0.0")


@pytest.fixture(scope="session")
def hgb_bundle(hgb_pipe: Pipeline, penguins: tuple[pd.DataFrame, pd.Series]) -> sm.ModelBundle:
    return sm.ModelBundle.from_training(hgb_pipe, penguins[0], name="penguins-hgb")


@pytest.fixture(scope="session")
def strict_bundle(lr_pipe: Pipeline, penguins: tuple[pd.DataFrame, pd.Series]) -> sm.ModelBundle:
    return sm.ModelBundle.from_training(lr_pipe, penguins[0], name="penguins-strict",
                                        version="1.0.0", policy=sm.Policy.strict())


@pytest.fixture(scope="session")
def lr_bundle_path(lr_bundle: sm.ModelBundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundles") / "penguins-lr-1.0.0.safemodel"
    lr_bundle.save(path)
    return path
