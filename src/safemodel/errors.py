"""Exceptions raised by safemodel.

Every error safemodel raises on purpose derives from :class:`SafeModelError`, and
each subclass also inherits the builtin exception it resembles, so existing
``except ValueError`` code keeps working::

    SafeModelError(Exception)
    ├── InvalidArgument(SafeModelError, ValueError, TypeError)  a bad argument
    ├── ContractViolation(SafeModelError, ValueError)    input does not meet the contract
    ├── GoldenMismatchError(SafeModelError, AssertionError)  outputs no longer reproduce
    ├── SigningKeyError(SafeModelError, ValueError)      a key that cannot sign or verify
    ├── IntegrityError(SafeModelError, ValueError)       hashes, signature or pickle audit
    │   └── UntrustedBundleError                         no trusted key signed the bundle
    ├── BundleFormatError(SafeModelError, ValueError)    not a readable bundle file
    ├── ScoringError(SafeModelError, RuntimeError)       the estimator itself raised
    ├── TooManyRejected(SafeModelError, ValueError)      a batch rejected past max_rejected
    ├── IncompatibleEnvironmentError(SafeModelError, RuntimeError)
    │                                        the estimator cannot run under this process's
    │                                        package versions (an upgrade or downgrade)
    └── StoreError(SafeModelError, LookupError)          bundle store lookups and updates
        └── BundleNotFoundError(StoreError, KeyError)    no such name, version or alias

Errors carry structured context as attributes (``failures``, ``member``,
``expected``, ``found`` ...), and pickle with it, so a service can return them as
JSON and a worker process can send them to its parent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from safemodel._values import echo, echo_repr, shorten

__all__ = [
    "BundleFormatError",
    "BundleNotFoundError",
    "ContractViolation",
    "Failure",
    "GoldenMismatchError",
    "IncompatibleEnvironmentError",
    "IntegrityError",
    "InvalidArgument",
    "SafeModelError",
    "ScoringError",
    "SigningKeyError",
    "StoreError",
    "TooManyRejected",
    "UntrustedBundleError",
]


class SafeModelError(Exception):
    """Base class of every error safemodel raises on purpose."""


class InvalidArgument(SafeModelError, ValueError, TypeError):
    """An argument to a safemodel function or class is not one it accepts.

    Both a ``ValueError`` and a ``TypeError`` (as scikit-learn's
    ``InvalidParameterError`` is), so callers catching either keep working.

    Attributes
    ----------
    argument : str or None
        The parameter's name.
    expected : str or None
        What the parameter accepts, in words ("a number in (0, 1]").
    found : object
        The value given (its ``repr`` is in the message).
    """

    def __init__(
        self,
        message: str,
        *,
        argument: str | None = None,
        expected: str | None = None,
        found: Any = None,
    ) -> None:
        super().__init__(message)
        self.argument = argument
        self.expected = expected
        self.found = found

    def __reduce__(self) -> tuple[Any, ...]:
        context = {"argument": self.argument, "expected": self.expected, "found": self.found}
        return (_rebuild_keyword_error, (type(self), str(self), context))

    @classmethod
    def of(cls, function: str, argument: str, expected: str, found: Any) -> InvalidArgument:
        """The scikit-learn-style message: "The 'x' parameter of f must be ...; got ..."."""
        return cls(
            f"The {argument!r} parameter of {function} must be {expected}; got {found!r} "
            "instead.",
            argument=argument, expected=expected, found=found,
        )


@dataclass(frozen=True)
class Failure:
    """One way in which one input broke the contract.

    ``row`` is the row position in the caller's input (``None`` when the failure is
    about a whole column, e.g. a missing column). ``value`` is the offending value as
    sent; :meth:`to_dict` makes it strict JSON and short (non-finite numbers as
    ``"inf"``, ``"-inf"``, ``"nan"``; long strings cut, saying their length).
    """

    column: str
    check: str
    value: Any = None
    row: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON (``json.dumps(..., allow_nan=False)`` holds), values truncated."""
        return {"column": shorten(str(self.column)), "check": shorten(str(self.check)),
                "value": echo(self.value), "row": self.row}


class ContractViolation(SafeModelError, ValueError):
    """The input does not meet the bundle's contract under its policy.

    Attributes
    ----------
    failures : list of Failure
        Every failure found, all at once (column, check, value, row).
    """

    def __init__(self, failures: Sequence[Failure], message: str | None = None) -> None:
        self.failures = list(failures)
        super().__init__(message if message is not None else _describe_failures(self.failures))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.failures, str(self)))

    @property
    def rows(self) -> list[int]:
        """Sorted row positions that have at least one failure."""
        return sorted({f.row for f in self.failures if f.row is not None})

    def _repr_html_(self) -> str:
        from safemodel import _html

        return _html.box(f"ContractViolation: {len(self.failures)} failure(s)",
                         f"<div>{_html.esc(self)}</div>", failures_html(self.failures),
                         status="error")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, suitable for an HTTP 422 body.

        Always strict JSON, whatever the input held: non-finite numbers are the
        strings ``"inf"``, ``"-inf"``, ``"nan"``; echoed values are truncated.
        """
        return {
            "error": "contract_violation",
            "message": str(self),
            "failures": [f.to_dict() for f in self.failures],
        }


def failures_html(failures: Sequence[Failure], limit: int = 50) -> str:
    """The failures as an HTML table (column, check, value, row), for notebook displays."""
    from safemodel import _html

    rows = [(f.column, f.check, echo_repr(f.value), "-" if f.row is None else f.row)
            for f in failures[:limit]]
    more = f"<div>... and {len(failures) - limit} more</div>" if len(failures) > limit else ""
    return _html.table(["column", "check", "value", "row"], rows) + more


def _describe_failures(failures: Sequence[Failure], limit: int = 5) -> str:
    if not failures:
        return "The input does not meet the contract."
    whole: dict[str, list[str]] = {}  # check -> columns, for whole-column failures
    by_check: dict[tuple[str, str], list[Failure]] = {}
    for f in failures:
        if f.check in _COLUMN_CHECKS and f.row is None:
            whole.setdefault(f.check, []).append(f.column)
        else:
            by_check.setdefault((f.column, f.check), []).append(f)
    parts = [
        f"{_COLUMN_CHECKS[check]} " + ", ".join(echo_repr(c) for c in columns[:8])
        + (f" and {len(columns) - 8} more" if len(columns) > 8 else "")
        for check, columns in whole.items()
    ]
    for (column, check), group in list(by_check.items())[:limit]:
        shown = ", ".join(
            echo_repr(f.value) + (f" (row {f.row})" if f.row is not None else "")
            for f in group[:3]
        )
        more = f" and {len(group) - 3} more" if len(group) > 3 else ""
        parts.append(f"column {echo_repr(column)}: {shorten(str(check))}: {shown}{more}")
    if len(by_check) > limit:
        parts.append(f"... and {len(by_check) - limit} more kinds of failure")
    return (f"The input breaks the contract in {len(failures)} place(s): "
            + "; ".join(parts) + ". " + _next_step({f.check for f in failures}))


_COLUMN_CHECKS = {"missing_column": "missing column(s)",
                  "unexpected_column": "unexpected column(s)"}
# The value checks a policy decides (and the setting that accepts them); every other
# check is about the input itself, which only the sender can fix.
_POLICY_SETTINGS = {
    "unseen_category": "unseen_category='missing'",
    "unexpected_missing": "missing='impute'",
}


def _next_step(checks: set[str]) -> str:
    """What to do about failures of these checks: one sentence per kind of fix."""
    steps = []
    if "missing_column" in checks:
        steps.append("Add the missing column(s) to every row of the input; no policy "
                     "can fill in an absent column (send missing values instead, where "
                     "the contract allows them).")
    if "unexpected_column" in checks:
        steps.append("Remove the unexpected column(s) from the input, or rebuild the "
                     "bundle with a policy that drops them (extra_columns='drop').")
    settings = [v for k, v in _POLICY_SETTINGS.items() if k in checks]
    if settings:
        steps.append("Correct those values in the input, or, if the model should accept "
                     "them, rebuild the bundle with a policy that handles them ("
                     + ", ".join(settings) + ").")
    if checks - {*_COLUMN_CHECKS, *_POLICY_SETTINGS}:
        steps.append("Send values of the type and range the contract records (only "
                     "lossless conversions are made, e.g. int to float).")
    return " ".join(steps)


class GoldenMismatchError(SafeModelError, AssertionError):
    """The estimator no longer reproduces its recorded golden outputs.

    Attributes
    ----------
    mismatches : list of dict
        One entry per scoring method that differs: ``method``, ``rows_differing``,
        ``rows_total``, ``max_abs_diff``, ``max_rel_diff``, ``examples`` (first differing
        rows, expected vs obtained).
    environment_diff : dict
        ``package -> (recorded, running)`` for every package whose version changed.
    """

    def __init__(
        self,
        message: str,
        *,
        mismatches: Sequence[Mapping[str, Any]] = (),
        environment_diff: Mapping[str, tuple[str | None, str | None]] | None = None,
    ) -> None:
        super().__init__(message)
        self.mismatches = [dict(m) for m in mismatches]
        self.environment_diff = dict(environment_diff or {})

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_golden_error, (str(self), self.mismatches, self.environment_diff))

    @property
    def method(self) -> str | None:
        """The first scoring method that differs."""
        return self.mismatches[0]["method"] if self.mismatches else None


def _rebuild_golden_error(
    message: str,
    mismatches: list[dict[str, Any]],
    environment_diff: dict[str, tuple[str | None, str | None]],
) -> GoldenMismatchError:
    return GoldenMismatchError(message, mismatches=mismatches, environment_diff=environment_diff)


class _FileError(SafeModelError, ValueError):
    """Shared body of the errors about a bundle file: which member, expected, found."""

    def __init__(
        self,
        message: str,
        *,
        member: str | None = None,
        expected: Any = None,
        found: Any = None,
    ) -> None:
        super().__init__(message)
        self.member = member
        self.expected = expected
        self.found = found

    def __reduce__(self) -> tuple[Any, ...]:
        context = {"member": self.member, "expected": self.expected, "found": self.found}
        return (_rebuild_keyword_error, (type(self), str(self), context))


class SigningKeyError(SafeModelError, ValueError):
    """A signing key that cannot be used.

    It is empty, of an unsupported type, text in neither accepted form (``hmac:...``
    or a PEM document), unreadable PEM, public-key material given as an HMAC secret,
    or a public key given where a private key is needed. Check the key's form with
    ``safemodel keys show`` (your own) or the publisher's exported PEM.
    """


class IntegrityError(_FileError):
    """A bundle's bytes are not what its manifest (or signature, or audit) promises.

    Attributes: ``member`` (archive member concerned, if any), ``expected``, ``found``.
    """


class UntrustedBundleError(IntegrityError):
    """No trusted key signed the bundle, so it was not unpickled.

    Attributes
    ----------
    signer : str
        The signer's key id as the signature names it, ``"unsigned"``, or
        ``"hmac-sha256"`` for a bundle signed with an HMAC secret the loader lacks.
    references : list of str
        The globals the pickle would import, from the static audit, so the reader
        can judge what trusting it would run.
    member, expected, found
        As for :class:`IntegrityError` (``member="signature.json"``).
    """

    def __init__(
        self,
        message: str,
        *,
        signer: str = "unsigned",
        references: Sequence[str] = (),
        member: str | None = None,
        expected: Any = None,
        found: Any = None,
    ) -> None:
        super().__init__(message, member=member, expected=expected, found=found)
        self.signer = signer
        self.references = list(references)

    def __reduce__(self) -> tuple[Any, ...]:
        context = {"member": self.member, "expected": self.expected, "found": self.found,
                   "signer": self.signer, "references": self.references}
        return (_rebuild_keyword_error, (type(self), str(self), context))


class BundleFormatError(_FileError):
    """The file is not a bundle safemodel can read (not a zip, wrong layout, newer format).

    Attributes: ``member``, ``expected``, ``found`` as for :class:`IntegrityError`.
    """


class ScoringError(SafeModelError, RuntimeError):
    """The estimator raised on input the policy let through (e.g. ``passthrough``).

    The original exception is chained as ``__cause__``; ``method`` names the call.
    """

    def __init__(self, message: str, *, method: str | None = None) -> None:
        super().__init__(message)
        self.method = method

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_keyword_error, (type(self), str(self), {"method": self.method}))


class TooManyRejected(SafeModelError, ValueError):
    """More rows of a batch broke the contract than ``max_rejected`` allows.

    Attributes
    ----------
    rejected : int
        Rows the contract rejected.
    rows : int
        Rows in the batch.
    limit : int
        The most rejected rows the call accepted (``max_rejected`` as a count).
    reasons : dict of str to int
        Failed check -> rows, e.g. ``{"age: type: expected float64, found text": 994}``.
    """

    def __init__(self, message: str, *, rejected: int = 0, rows: int = 0, limit: int = 0,
                 reasons: Mapping[str, int] | None = None) -> None:
        super().__init__(message)
        self.rejected = rejected
        self.rows = rows
        self.limit = limit
        self.reasons = dict(reasons or {})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready context."""
        return {"error": type(self).__name__, "message": str(self), "rejected": self.rejected,
                "rows": self.rows, "limit": self.limit, "reasons": dict(self.reasons)}

    def __reduce__(self) -> tuple[Any, ...]:
        context = {"rejected": self.rejected, "rows": self.rows, "limit": self.limit,
                   "reasons": self.reasons}
        return (_rebuild_keyword_error, (type(self), str(self), context))


class IncompatibleEnvironmentError(SafeModelError, RuntimeError):
    """The bundle is intact, but its estimator cannot run under this process's packages.

    Raised by loading when unpickling the estimator, or running it on the golden
    inputs, fails and package versions differ from those the bundle was built with:
    the estimator's code changed between those versions (an attribute renamed, a
    module moved). A ``RuntimeError``, like :class:`ScoringError`: nothing is wrong
    with the file or the input, only with where it runs.

    Attributes
    ----------
    bundle : str or None
        ``name==version`` of the bundle.
    built_with : dict
        ``package -> version`` recorded at build time, for the packages that differ.
    running : dict
        ``package -> version`` in this process (``None``: not installed), same keys.
    diff : dict
        ``package -> (built_with, running)``, the two above side by side.
    stage : str or None
        ``"unpickle"`` (the estimator), ``"read"`` (another part, e.g. the golden
        inputs) or ``"golden"`` (running the golden inputs): which step of loading failed.
    cause : str or None
        The estimator's own error, ``"Type: message"``.
    requirements : list of str
        pip requirement lines (``name==version``) that pin the build versions here.
    """

    def __init__(
        self,
        message: str,
        *,
        bundle: str | None = None,
        diff: Mapping[str, tuple[str | None, str | None]] | None = None,
        stage: str | None = None,
        cause: str | None = None,
        requirements: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.bundle = bundle
        self.diff = {k: (v[0], v[1]) for k, v in (diff or {}).items()}
        self.stage = stage
        self.cause = cause
        self.requirements = list(requirements)

    @property
    def built_with(self) -> dict[str, str | None]:
        return {k: before for k, (before, _) in self.diff.items()}

    @property
    def running(self) -> dict[str, str | None]:
        return {k: now for k, (_, now) in self.diff.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        context = {"bundle": self.bundle, "diff": self.diff, "stage": self.stage,
                   "cause": self.cause, "requirements": self.requirements}
        return (_rebuild_keyword_error, (type(self), str(self), context))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: the message, and the environment diff as data."""
        return {
            "error": "incompatible_environment",
            "message": str(self),
            "bundle": self.bundle,
            "stage": self.stage,
            "cause": self.cause,
            "built_with": self.built_with,
            "running": self.running,
            "environment_diff": {k: list(v) for k, v in self.diff.items()},
            "requirements": list(self.requirements),
        }


class StoreError(SafeModelError, LookupError):
    """A bundle store lookup or update that cannot be done (version taken, bad alias).

    Attributes
    ----------
    name : str or None
        The bundle name concerned.
    version : str or None
        The version, specifier or alias asked for, or the version concerned, as text.
    alias : str or None
        The alias concerned.
    known : list of str or None
        What the store holds instead (names, versions or aliases), when that helps.
    refused : bool
        Whether the error refused a promotion or rollback (a check of the target
        failed, so the alias did not move), rather than a lookup that found nothing.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        version: str | None = None,
        alias: str | None = None,
        known: Sequence[str] | None = None,
        refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.version = version
        self.alias = alias
        self.known = None if known is None else [str(k) for k in known]
        self.refused = refused

    def __reduce__(self) -> tuple[Any, ...]:
        context = {"name": self.name, "version": self.version, "alias": self.alias,
                   "known": self.known, "refused": self.refused}
        return (_rebuild_keyword_error, (type(self), str(self), context))

    def __str__(self) -> str:
        # The message as given; KeyError (a subclass's base) would show its repr.
        return str(self.args[0]) if self.args else ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, suitable for an HTTP 404 or 409 body."""
        return {"error": _snake(type(self).__name__), "message": str(self), "name": self.name,
                "version": self.version, "alias": self.alias, "known": self.known}


class BundleNotFoundError(StoreError, KeyError):
    """The store has no bundle of that name, no such version, or no such alias.

    Also a :class:`KeyError`, as for a missing key of a mapping
    (``service["churn"]``). Attributes as for :class:`StoreError`.
    """


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower()
                   for i, c in enumerate(name))


def _rebuild_keyword_error(cls: type[Any], message: str, context: dict[str, Any]) -> Any:
    return cls(message, **context)
