"""Shared fixtures: real palmer-penguins pipelines and bundles built from them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

import safemodel as sm
from helpers import hgb_pipeline, lr_pipeline, penguins_frame

pytest_plugins = ["pytester"]


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
