"""Unpickling the estimator so that its arrays cost what ``joblib.load``'s do.

A cloudpickle (protocol 5) pickle stores each numpy array's data in-band; numpy's
reconstructor (``numpy._core.numeric._frombuffer``) then returns a view of the
``bytearray`` the unpickler made, itself a view of a one-dimensional view. So every
array costs three objects. A random forest holds thousands of tiny arrays (``classes_``
of each tree...): over the 50 bundles of ``benchmarks/run.py`` that overhead was 3.9 MB
of 13.1 MB. :func:`loads` rebuilds each such array as one array that owns a copy of its
data, equal bit for bit and writeable exactly when the pickled one was.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

__all__ = ["loads"]

# Where numpy 1 and numpy 2 pickles name the reconstructor of in-band array data.
_FROMBUFFER = frozenset({("numpy._core.numeric", "_frombuffer"),
                         ("numpy.core.numeric", "_frombuffer")})


def _owning_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """What ``numpy._core.numeric._frombuffer`` returns, as one array owning its data."""
    view: np.ndarray = np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)
    array: np.ndarray = view.copy(order="K")  # a Fortran-ordered array stays so
    if not view.flags.writeable:  # pickled from a read-only array: stays read-only
        array.flags.writeable = False
    return array


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _FROMBUFFER:
            return _owning_frombuffer
        return super().find_class(module, name)


def loads(data: bytes) -> Any:
    """``cloudpickle.loads(data)`` (which is ``pickle.loads``), with owning arrays."""
    return _Unpickler(io.BytesIO(data)).load()
