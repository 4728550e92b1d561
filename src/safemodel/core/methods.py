"""The scoring methods a bundle offers: which ones, and how they appear on the class.

A bundle scores with every predictive method its estimator has (``transform`` only for
an estimator with none); :class:`_ScoringMethod` makes each one an attribute of the
bundle only when the estimator has it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import numpy as np

if TYPE_CHECKING:
    from safemodel.core.bundle import ModelBundle

__all__ = ["PREDICTIVE_METHODS", "SCORING_METHODS", "Method", "scoring_methods"]

SCORING_METHODS = ("predict", "predict_proba", "decision_function", "transform")
PREDICTIVE_METHODS = SCORING_METHODS[:3]

Method = Literal["predict", "predict_proba", "decision_function", "transform"]


def scoring_methods(estimator: Any) -> tuple[str, ...]:
    """The methods a bundle of ``estimator`` scores with.

    Every predictive method the estimator has; ``transform`` only for an estimator
    with none of them (a fitted feature pipeline, an encoder, a decomposition), since
    an estimator that predicts is bundled for its predictions.
    """
    methods = tuple(m for m in PREDICTIVE_METHODS if hasattr(estimator, m))
    if not methods and hasattr(estimator, "transform"):
        return ("transform",)
    return methods


_B = TypeVar("_B", bound="ModelBundle")


class _ScoringMethod(Generic[_B]):
    """A scoring method that exists on a bundle only if its estimator has it.

    ``hasattr(bundle, "predict_proba")`` is therefore False for a regressor, as for
    the estimator itself. On the class it is a plain function with a docstring, so
    ``help(ModelBundle)`` lists it with the methods.
    """

    def __init__(self, method: Method) -> None:
        self.method = method

        def unbound(self: ModelBundle, X: Any) -> np.ndarray:
            # What the estimator returns (a list of arrays for a multi-output classifier's
            # predict_proba), typed as its usual array.
            out: np.ndarray = self._score(method, X)
            return out

        unbound.__name__ = method
        unbound.__qualname__ = f"ModelBundle.{method}"
        unbound.__doc__ = _SCORING_DOC.format(method=method)
        self.unbound = unbound

    @overload
    def __get__(self, obj: None, owner: type[_B]) -> Callable[[_B, Any], np.ndarray]: ...
    @overload
    def __get__(self, obj: _B, owner: type[_B]) -> Callable[[Any], np.ndarray]: ...
    def __get__(self, obj: _B | None, owner: type[_B]) -> Any:
        if obj is None:
            return self.unbound
        method = self.method
        if method not in obj.methods:
            raise AttributeError(
                f"{type(obj.estimator).__name__} has no {method}; this bundle offers "
                f"{list(obj.methods)}."
            )

        def score(X: Any) -> Any:
            return obj._score(method, X)

        score.__name__ = method
        score.__qualname__ = f"ModelBundle.{method}"
        score.__doc__ = self.unbound.__doc__
        return score


_SCORING_DOC = """``estimator.{method}(X)`` after the contract and the policy.

Present only when the estimator has ``{method}``.

Parameters
----------
X : DataFrame, list of dict records, dict of lists, or one dict (one row)
    Inputs as received; columns are checked by name against the contract.

Returns
-------
ndarray
    What ``estimator.{method}`` returns, one entry per input row.

Raises
------
ContractViolation
    Input the contract rejects under the policy (every failure at once).
ScoringError
    The estimator itself raised.
"""
