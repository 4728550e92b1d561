"""Failures caused by a package upgrade (or downgrade) since a bundle was built.

A bundle records the versions of the packages it was built with. When unpickling its
estimator, or running it on the golden inputs, fails in a process whose versions
differ, the cause is the change of environment, not the file and not the policy: an
attribute renamed between scikit-learn releases (``'SimpleImputer' object has no
attribute '_fill_dtype'``), a module moved (``No module named '_loss'``). This module
turns those failures into :class:`~safemodel.errors.IncompatibleEnvironmentError`,
and gives golden mismatches under changed versions the same advice: pin the build
versions here (the exact requirement lines), or rebuild and re-promote the bundle
under the new ones. Under ``load(environment="strict")`` it refuses a major or minor
change of a model package before anything is unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from safemodel.core.environment import environment_diff
from safemodel.errors import GoldenMismatchError, IncompatibleEnvironmentError, IntegrityError

if TYPE_CHECKING:
    from safemodel.core.golden import VerificationReport

__all__ = [
    "MODEL_PACKAGES",
    "changed_packages",
    "check_environment_strict",
    "environment_refusal",
    "requirement_lines",
    "verification_refusal",
]

MODEL_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas")
"""Named first in messages: the packages an estimator's behaviour depends on most."""

# Recorded but not installable with pip: the interpreter and the operating system.
_NOT_PACKAGES = ("python", "platform")
# safemodel's own version never changes how an estimator unpickles or scores (its file
# format is versioned apart), so a different safemodel alone does not explain a failure.
_SELF = "safemodel"

Diff = Mapping[str, tuple[str | None, str | None]]


def requirement_lines(environment: Mapping[str, str | None],
                      only: tuple[str, ...] | None = None) -> list[str]:
    """pip requirement lines (``name==version``) for the packages a bundle recorded.

    Parameters
    ----------
    environment : mapping of str to str or None
        A bundle's recorded environment (``bundle.environment``, ``info.environment``).
    only : tuple of str, optional
        Keep only these packages (in the recorded order).

    Returns
    -------
    list of str
        One line per package with a recorded version; Python and the platform are left
        out (pip cannot install them).
    """
    return [f"{name}=={version}" for name, version in environment.items()
            if version and name not in _NOT_PACKAGES and (only is None or name in only)]


def changed_packages(diff: Diff) -> dict[str, tuple[str | None, str | None]]:
    """The entries of an environment diff that can explain a changed estimator.

    Model packages come first, then the others alphabetically; the platform and
    safemodel's own version are left out.
    """
    keep = {k: v for k, v in diff.items() if k not in ("platform", _SELF)}
    order = {name: i for i, name in enumerate(MODEL_PACKAGES)}
    return dict(sorted(keep.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def environment_refusal(
    exc: BaseException,
    *,
    bundle: str,
    environment: Mapping[str, str | None],
    part: str = "estimator",
) -> IncompatibleEnvironmentError | None:
    """The refusal for a part of a bundle that does not read here, if versions explain it.

    Parameters
    ----------
    exc : BaseException
        What unpickling the estimator (or decoding another part) raised.
    bundle : str
        ``name==version``, for the message.
    environment : mapping
        The environment the bundle recorded at build time.
    part : str, default "estimator"
        What failed to read: ``"estimator"`` (unpickling) or e.g. ``"golden inputs"``.

    Returns
    -------
    IncompatibleEnvironmentError or None
        ``None`` when no relevant package version differs: then the environment lacks
        something the bundle never recorded (the caller's own error applies).
    """
    diff = changed_packages(environment_diff(environment))
    if not diff:
        return None
    cause = f"{type(exc).__name__}: {exc}"
    hint = ""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        hint = (" A module that moved or was renamed between these versions is the usual "
                f"cause; if {exc.name!r} is your own code, install it as well.")
    elif isinstance(exc, ImportError):
        hint = " If it names a package the bundle did not record, install that as well."
    verb = "Unpickling" if part == "estimator" else "Reading"
    return _refusal(bundle, diff, environment, stage="unpickle" if part == "estimator" else
                    "read", cause=cause, failed=f"{verb} its {part} failed ({cause}).{hint}")


def verification_refusal(
    report: VerificationReport,
    *,
    bundle: str,
    environment: Mapping[str, str | None],
    note: str = "",
) -> IncompatibleEnvironmentError | GoldenMismatchError:
    """The error for a failed golden verification, naming the versions when they changed.

    The estimator raising on golden rows it scored at build time means it cannot run
    here: :class:`IncompatibleEnvironmentError` when package versions differ. Outputs
    that merely differ stay a :class:`GoldenMismatchError`, with the advice to pin or
    rebuild when versions differ. ``note`` is appended to the message.

    Parameters
    ----------
    report : VerificationReport
        A report whose ``ok`` is False.
    bundle : str
        ``name==version``.
    environment : mapping
        The environment the bundle recorded at build time.
    note : str, optional
        A last line for the message (e.g. the tolerances used).

    Returns
    -------
    IncompatibleEnvironmentError or GoldenMismatchError
    """
    diff = changed_packages(report.environment_diff)
    raised = [m for m in report.mismatches if m.get("raised")]
    suffix = f"\n{note}" if note else ""
    if diff and raised:
        first = raised[0]
        cause = str(first.get("detail") or first["raised"])
        return _refusal(bundle, diff, environment, stage="golden", cause=cause,
                        failed=f"Running its golden inputs failed: {cause}.", suffix=suffix)
    message = report.describe()
    if diff:
        message += "\n" + _indent(_advice(diff, environment, changed_outputs=True))
    return GoldenMismatchError(message + suffix, mismatches=report.mismatches,
                               environment_diff=report.environment_diff)


# ------------------------------------------------------------------ messages


def _refusal(bundle: str, diff: Diff, environment: Mapping[str, str | None], *, stage: str,
             cause: str, failed: str, suffix: str = "") -> IncompatibleEnvironmentError:
    message = (
        f"{bundle} cannot run in this environment: {_versions(diff)}. {failed} The file is "
        "intact; the estimator's code changed between these versions.\n"
        + _advice(diff, environment, changed_outputs=False) + suffix
    )
    return IncompatibleEnvironmentError(
        message, bundle=bundle, diff=diff, stage=stage, cause=cause,
        requirements=_pins(diff, environment),
    )


def _versions(diff: Diff) -> str:
    built = ", ".join(f"{_name(k)} {a or '(absent)'}" for k, (a, _) in diff.items())
    here = ", ".join(f"{_name(k)} {b or '(absent)'}" for k, (_, b) in diff.items())
    return f"it was built with {built}; this process runs {here}"


def _name(package: str) -> str:
    return "Python" if package == "python" else package


def _pins(diff: Diff, environment: Mapping[str, str | None]) -> list[str]:
    return requirement_lines(environment, only=tuple(diff))


def _advice(diff: Diff, environment: Mapping[str, str | None], *, changed_outputs: bool) -> str:
    pins = _pins(diff, environment)
    lines = []
    if changed_outputs:
        lines.append(f"Package versions changed since the bundle was built ({_versions(diff)}); "
                     "the estimator gives different outputs under them. Either:")
    else:
        lines.append("Either:")
    if pins:
        lines.append("  - pin the build versions in this environment: pip install "
                     + " ".join(pins))
    python = diff.get("python")
    if python is not None:
        lines.append(f"  - run it under Python {python[0]} (this process runs {python[1]}); "
                     "pip cannot change that")
    lines.append("    (`safemodel requirements PATH` prints every package it was built with)")
    lines.append("  - or rebuild the bundle under the new versions (ModelBundle.from_training "
                 + ("on its training data), review the changed outputs, and re-promote it."
                    if changed_outputs else "on its training data), verify and re-promote it."))
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def check_environment_strict(recorded: Mapping[str, str | None]) -> None:
    """``load(environment="strict")``: refuse a major or minor version change of a model
    package (:data:`MODEL_PACKAGES`) since build time, before anything is unpickled."""
    from packaging.version import InvalidVersion, Version

    diff = environment_diff({k: recorded.get(k) for k in MODEL_PACKAGES if k in recorded})
    bad = {}
    for name, (before, after) in diff.items():
        try:
            a, b = Version(before or ""), Version(after or "")
            if a.release[:2] == b.release[:2]:
                continue
        except InvalidVersion:
            pass
        bad[name] = (before, after)
    if bad:
        raise IntegrityError(
            "environment='strict': package versions differ from build time in major or "
            "minor version: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in bad.items())
            + ". Install the recorded versions or load with environment='warn'.",
            expected={k: a for k, (a, _) in bad.items()},
            found={k: b for k, (_, b) in bad.items()},
        )
