"""pytest plugin: turns bundle files into reproducibility tests (see docs/pytest-plugin.md).

Registered through the ``pytest11`` entry point, so it is active wherever safemodel is
installed, and does nothing until bundles are named, on the command line::

    pytest --safemodel-bundles "models/*.safemodel"

or in the pytest configuration::

    [tool.pytest.ini_options]
    safemodel_bundles = "models/*.safemodel"

Each matching file is collected as five items, named after the file and the check:
``models/churn.safemodel::integrity``, ``::golden``, ``::contract``, ``::policy`` and
``::robustness``. The checks themselves live in :mod:`safemodel.testing`, imported
when the first item runs, so a pytest run without bundles pays nothing for them.

A bundle is unpickled only if a trusted key signed it (your own key, the trust store,
``$SAFEMODEL_TRUSTED_KEYS``, or the ini option ``safemodel_trusted_keys`` /
``--safemodel-trusted-key``); any other bundle fails its ``integrity`` item with
``UntrustedBundleError`` and nothing in it runs. ``--safemodel-trust`` (ini
``safemodel_trust = true``) loads untrusted bundles on purpose.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr, TracebackStyle

    from safemodel.core.bundle import ModelBundle

__all__ = [
    "CHECKS",
    "BundleFile",
    "BundleItem",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
]

#: The items collected for every bundle file, in order, with what each one checks.
CHECKS: dict[str, str] = {
    "integrity": "format version, member hashes, a trusted signer; the estimator unpickles",
    "golden": "the golden outputs reproduce in this environment",
    "contract": "the contract accepts its own golden inputs; its JSON schema agrees",
    "policy": "the policy treats the golden edge cases as recorded",
    "robustness": "generated inputs: valid ones score, invalid ones raise ContractViolation",
}

_SUFFIX = ".safemodel"


@dataclass(frozen=True)
class _Settings:
    bundles: frozenset[Path]
    seed: int
    examples: int
    trusted_keys: tuple[Path, ...]
    trust: bool


_SETTINGS = pytest.StashKey[_Settings]()
# One load per bundle file and process (xdist workers each load their own).
_LOADED = pytest.StashKey["dict[Path, ModelBundle | Exception]"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``safemodel`` option group and ini options."""
    group = parser.getgroup("safemodel", "safemodel (check model bundle files)")
    group.addoption(
        "--safemodel-bundles", action="append", metavar="GLOB", default=None,
        help="collect the bundle files matching GLOB (relative to the current folder; "
             "** allowed) as tests: integrity, golden, contract, policy, robustness. "
             "Repeatable; replaces the safemodel_bundles ini option.",
    )
    group.addoption(
        "--safemodel-seed", type=int, metavar="N", default=None,
        help="seed of the robustness check's generated inputs (default: ini "
             "safemodel_seed, else 0).",
    )
    group.addoption(
        "--safemodel-examples", type=int, metavar="N", default=None,
        help="generated inputs per robustness property (default: ini safemodel_examples, "
             "else 50).",
    )
    group.addoption(
        "--safemodel-trusted-key", action="append", metavar="PEM", default=None,
        help="also trust bundles signed by this public key file (repeatable; replaces the "
             "safemodel_trusted_keys ini option).",
    )
    group.addoption(
        "--safemodel-trust", action="store_true", default=None,
        help="load bundles no trusted key signed, on purpose: their pickles run code "
             "(default: ini safemodel_trust, else false).",
    )
    parser.addini("safemodel_trusted_keys", type="args", default=[],
                  help="public key files (PEM) whose bundles are trusted, relative to the "
                       "configuration file's folder")
    parser.addini("safemodel_trust", type="bool", default=False,
                  help="load bundles no trusted key signed (their pickles run code)")
    parser.addini("safemodel_bundles", type="args", default=[],
                  help="glob patterns of bundle files to collect as tests, relative to the "
                       "configuration file's folder")
    parser.addini("safemodel_seed", default="0",
                  help="seed of the safemodel robustness check (default 0)")
    parser.addini("safemodel_examples", default="50",
                  help="generated inputs per safemodel robustness property (default 50)")


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the bundle patterns once, so that every process collects the same items."""
    config.addinivalue_line(
        "markers", "safemodel: a check of a safemodel bundle file (added by the plugin)")
    cli: list[str] | None = config.getoption("safemodel_bundles")
    if cli:
        patterns, base = cli, config.invocation_params.dir
    else:
        patterns = config.getini("safemodel_bundles")
        base = config.inipath.parent if config.inipath is not None else config.rootpath
    bundles = _matching(config, patterns, base)
    config.stash[_SETTINGS] = _Settings(
        bundles=frozenset(bundles),
        seed=_integer(config, "seed", minimum=None),
        examples=_integer(config, "examples", minimum=1),
        trusted_keys=_trusted_keys(config),
        trust=bool(config.getoption("safemodel_trust") or config.getini("safemodel_trust")),
    )
    config.stash[_LOADED] = {}
    # Bundles join the default selection the way testpaths do: when named on the
    # command line, or when pytest runs from the root folder without test arguments.
    default_run = (config.args_source is not pytest.Config.ArgsSource.ARGS
                   and config.invocation_params.dir == config.rootpath)
    if bundles and (cli or default_run):
        _add_to_args(config, bundles)


def _matching(config: pytest.Config, patterns: Sequence[str], base: Path) -> list[Path]:
    found: dict[Path, None] = {}  # ordered set: sorted within a pattern, patterns in order
    for pattern in patterns:
        full = os.path.join(base, os.path.expanduser(pattern))
        hits = sorted(p for p in glob.glob(full, recursive=True) if os.path.isfile(p))
        if not hits:
            message = f"safemodel: no bundle file matches {pattern!r} (looked in {base})."
            try:
                config.issue_config_time_warning(pytest.PytestConfigWarning(message),
                                                 stacklevel=2)
            except pytest.PytestConfigWarning:  # warnings are errors: say so plainly
                raise pytest.UsageError(message) from None
        found.update((Path(os.path.abspath(p)), None) for p in hits)
    return list(found)


def _trusted_keys(config: pytest.Config) -> tuple[Path, ...]:
    cli: list[str] | None = config.getoption("safemodel_trusted_key")
    if cli:
        base, names = config.invocation_params.dir, cli
    else:
        names = config.getini("safemodel_trusted_keys")
        base = config.inipath.parent if config.inipath is not None else config.rootpath
    return tuple(Path(os.path.abspath(base / os.path.expanduser(n))) for n in names)


def _integer(config: pytest.Config, name: str, *, minimum: int | None) -> int:
    value: int | None = config.getoption(f"safemodel_{name}")
    source = f"--safemodel-{name}"
    if value is None:
        source = f"ini option safemodel_{name}"
        raw = config.getini(f"safemodel_{name}")
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"{source} must be an integer; got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise pytest.UsageError(f"{source} must be at least {minimum}; got {value}.")
    return value


def _add_to_args(config: pytest.Config, bundles: Sequence[Path]) -> None:
    here = config.invocation_params.dir
    covered = [Path(os.path.abspath(here / arg.split("::")[0])) for arg in config.args]
    for path in bundles:
        if not any(path == c or c in path.parents for c in covered):
            config.args.append(str(path))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> BundleFile | None:
    """Collect bundle files matching the patterns, and ``*.safemodel`` files named as
    arguments (so that ``pytest models/a.safemodel::golden`` re-runs one check)."""
    settings = parent.config.stash.get(_SETTINGS, None)
    if settings is None:
        return None
    if Path(os.path.abspath(file_path)) in settings.bundles or (
            file_path.suffix == _SUFFIX and parent.session.isinitpath(file_path)):
        return BundleFile.from_parent(parent, path=file_path)
    return None


class BundleFile(pytest.File):
    """A bundle file, collected as one item per check in :data:`CHECKS`."""

    def collect(self) -> Iterator[BundleItem]:
        for check in CHECKS:
            yield BundleItem.from_parent(self, name=check)


class BundleItem(pytest.Item):
    """One check of one bundle file.

    The file is loaded once per process, with every integrity check but without golden
    verification, so that a changed score fails the ``golden`` item alone. When it does
    not load, the ``integrity`` item fails with the reason and the others are skipped.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker("safemodel")

    def runtest(self) -> None:
        if self.name == "integrity":
            self._load()
            return
        bundle = self._loaded_or_skip()
        from safemodel.testing import (
            assert_bundle_reproducible,
            assert_bundle_robust,
            assert_contract_consistent,
            assert_edge_cases_reproducible,
        )

        try:
            if self.name == "golden":
                assert_bundle_reproducible(bundle)
            elif self.name == "contract":
                assert_contract_consistent(bundle)
            elif self.name == "policy":
                assert_edge_cases_reproducible(bundle)
            else:
                settings = self.config.stash[_SETTINGS]
                assert_bundle_robust(bundle, examples=settings.examples, seed=settings.seed)
        except ModuleNotFoundError as exc:
            if exc.name in ("jsonschema", "hypothesis"):
                raise _skip(f"{self.name} check not run: {exc.name} is not installed "
                            f"(pip install {exc.name})") from None
            raise

    def _load(self) -> ModelBundle:
        loaded = self.config.stash[_LOADED]
        if self.path not in loaded:
            from safemodel.testing import _load_unverified

            settings = self.config.stash[_SETTINGS]
            try:
                loaded[self.path] = _load_unverified(
                    self.path, trusted_keys=settings.trusted_keys, trust=settings.trust)
            except Exception as exc:
                loaded[self.path] = exc.with_traceback(None)
        result = loaded[self.path]
        if isinstance(result, Exception):
            raise result
        return result

    def _loaded_or_skip(self) -> ModelBundle:
        try:
            return self._load()
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise _skip(f"{self.path.name} did not load (its integrity item fails): "
                        f"{type(exc).__name__}: {reason}") from None

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: TracebackStyle | None = None,
    ) -> str | TerminalRepr:
        """The check's own account of the failure, without a traceback.

        Unexpected errors (neither a failed assertion nor a safemodel error) keep
        pytest's usual traceback.
        """
        from safemodel.errors import SafeModelError

        exc = excinfo.value
        _record_environment(self, exc)
        if isinstance(exc, AssertionError):
            text = str(exc)
        elif isinstance(exc, SafeModelError):
            text = f"{type(exc).__name__}: {exc}"
        else:
            return super().repr_failure(excinfo, style)
        if self.name == "robustness":
            settings = self.config.stash[_SETTINGS]
            text += (f"\n  generated with seed {settings.seed}, {settings.examples} examples "
                     "per property (--safemodel-seed, --safemodel-examples)")
        return text

    def reportinfo(self) -> tuple[Path, int, str]:
        # The domain heads the failure section: the item, and what it checks. (Not the
        # bare node id: verbose output would turn the dots of a suffix of it into "::".)
        return self.path, 0, f"{self.nodeid}: {CHECKS[self.name]}"


def _record_environment(item: BundleItem, exc: BaseException) -> None:
    """The environment diff of a failure as a user property (JSON), for machines.

    It reaches ``--junitxml`` (a ``<property>``) and every report hook; see
    ``docs/upgrades.md``.
    """
    from safemodel.errors import GoldenMismatchError, IncompatibleEnvironmentError

    if isinstance(exc, IncompatibleEnvironmentError):
        data = {k: v for k, v in exc.to_dict().items() if k != "message"}
    elif isinstance(exc, GoldenMismatchError) and exc.environment_diff:
        data = {"error": "golden_mismatch",
                "environment_diff": {k: list(v) for k, v in exc.environment_diff.items()}}
    else:
        return
    item.user_properties.append(("safemodel_environment", json.dumps(data)))


def _skip(reason: str) -> BaseException:
    # Reported at the bundle file (the item's reportinfo), not at a line of this plugin.
    return pytest.skip.Exception(reason, _use_item_location=True)
