"""The handling policy: what to do with unseen categories, missing values, extra columns.

:class:`Policy` is configuration only (readable, stored in the bundle as JSON). The
engine that applies it is :func:`safemodel.core.engine.apply`; what it did is a
:class:`~safemodel.core.report.PolicyReport`.

Semantics (the user guide, docs/guide.md, "The policy", says the same for users):

- ``missing`` acts only on *unexpected* missing values (a column that had none in
  training). Expected missing values always reach the estimator unchanged.
- ``unseen_category="missing"`` turns an unseen value into a missing value of its
  column, which then follows the missing rule (imputed with the mode by default).
- Only lossless type coercions are made: int to float, integral float to int, str to
  category (and same-kind dtype changes such as ``float32`` to ``float64``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from safemodel.errors import BundleFormatError, InvalidArgument, SafeModelError

__all__ = ["ColumnPolicy", "ExtraAction", "MissingAction", "NumericTextAction", "Policy",
           "UnseenAction", "check_option"]

UnseenAction = Literal["error", "missing", "most_frequent", "passthrough"]
MissingAction = Literal["error", "impute", "passthrough"]
ExtraAction = Literal["drop", "error"]
NumericTextAction = Literal["error", "parse"]

_UNSEEN: tuple[str, ...] = get_args(UnseenAction)
_MISSING: tuple[str, ...] = get_args(MissingAction)
_EXTRA: tuple[str, ...] = get_args(ExtraAction)
_NUMERIC_TEXT: tuple[str, ...] = get_args(NumericTextAction)


def check_option(name: str, value: Any, options: tuple[str, ...], where: str = "Policy") -> None:
    """Raise :class:`InvalidArgument` unless ``value`` is one of ``options``."""
    if value not in options:
        raise InvalidArgument.of(where, name, f"one of {list(options)}", value)


@dataclass(frozen=True)
class ColumnPolicy:
    """Per-column override of :class:`Policy`; ``None`` inherits the policy's value."""

    unseen_category: UnseenAction | None = None
    missing: MissingAction | None = None

    def __post_init__(self) -> None:
        if self.unseen_category is not None:
            check_option("unseen_category", self.unseen_category, _UNSEEN, "ColumnPolicy")
        if self.missing is not None:
            check_option("missing", self.missing, _MISSING, "ColumnPolicy")


@dataclass(frozen=True)
class Policy:
    """What to do when input deviates from the contract.

    Parameters
    ----------
    unseen_category : {"missing", "error", "most_frequent", "passthrough"}
        A value outside a categorical column's allowed set.
    missing : {"impute", "error", "passthrough"}
        A missing value in a column that had none in training. ``"impute"`` fills
        the training median (numbers) or mode (everything else).
    extra_columns : {"drop", "error"}
        Columns the contract does not know.
    columns : dict of str to ColumnPolicy
        Per-column overrides.
    numeric_text : {"error", "parse"}, default "error"
        A number written as text (``"34.1"``, as CSV exports and some Spark sources
        send) in a numeric column. ``"parse"`` reads it when the text is exactly how
        the number prints (``"034"`` or ``"1e3"`` stay type failures); ``"error"``
        makes it a type failure, like any other value of the wrong type. Off by
        default: text where a number belongs usually means an upstream schema
        changed, which should be seen, not absorbed.

    Examples
    --------
    >>> import safemodel as sm
    >>> sm.Policy(columns={"island": sm.ColumnPolicy(unseen_category="error")})
    ... # doctest: +ELLIPSIS
    Policy(unseen_category='missing', missing='impute', ...)
    """

    unseen_category: UnseenAction = "missing"
    missing: MissingAction = "impute"
    extra_columns: ExtraAction = "drop"
    columns: Mapping[str, ColumnPolicy] = field(default_factory=dict)
    numeric_text: NumericTextAction = "error"

    def __post_init__(self) -> None:
        check_option("numeric_text", self.numeric_text, _NUMERIC_TEXT)
        check_option("unseen_category", self.unseen_category, _UNSEEN)
        check_option("missing", self.missing, _MISSING)
        check_option("extra_columns", self.extra_columns, _EXTRA)
        for name, cp in self.columns.items():
            if not isinstance(cp, ColumnPolicy):
                raise InvalidArgument(
                    f"Policy.columns[{name!r}] must be a ColumnPolicy; got "
                    f"{type(cp).__name__}. Write columns={{{name!r}: ColumnPolicy(...)}}.",
                    argument="columns", expected="a dict of str to ColumnPolicy", found=cp,
                )
        object.__setattr__(self, "columns", dict(self.columns))

    def _repr_html_(self) -> str:
        from safemodel.core._display import policy_html

        return policy_html(self)

    @classmethod
    def strict(cls) -> Policy:
        """Every deviation is an error: unseen categories, unexpected missing, extra columns."""
        return cls(unseen_category="error", missing="error", extra_columns="error")

    def for_column(self, name: str) -> tuple[UnseenAction, MissingAction]:
        """The effective ``(unseen_category, missing)`` actions for one column."""
        cp = self.columns.get(name)
        if cp is None:
            return self.unseen_category, self.missing
        return (cp.unseen_category or self.unseen_category, cp.missing or self.missing)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "unseen_category": self.unseen_category,
            "missing": self.missing,
            "extra_columns": self.extra_columns,
        }
        if self.columns:
            out["columns"] = {
                name: {k: v for k, v in (("unseen_category", cp.unseen_category),
                                         ("missing", cp.missing)) if v is not None}
                for name, cp in self.columns.items()
            }
        if self.numeric_text != "error":  # written only when set: older files stay the same
            out["numeric_text"] = self.numeric_text
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        try:
            return cls(
                unseen_category=data["unseen_category"],
                missing=data["missing"],
                extra_columns=data["extra_columns"],
                columns={str(k): ColumnPolicy(**v) for k, v in data.get("columns", {}).items()},
                numeric_text=data.get("numeric_text", "error"),
            )
        except (KeyError, TypeError, AttributeError, SafeModelError) as exc:
            raise BundleFormatError(
                f"The policy is malformed: {type(exc).__name__}: {exc}.", member="policy.json"
            ) from None
