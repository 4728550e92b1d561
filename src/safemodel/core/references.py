"""The globals a pickle would import, read from its opcodes without unpickling it.

:func:`pickle_references` is the static half of the pickle audit: the bundle records
what its estimator references (its environment names their distributions), and
:mod:`safemodel.io.audit` judges the references against an allow-list before anything
is unpickled. It reads bytes it is given and never imports what they name.

References are written ``"module.name"`` (``"sklearn.pipeline.Pipeline"``), or
``"module:attribute.path"`` for a dotted name (protocol 4 resolves ``"Outer.Inner"``
attribute by attribute, and a path can walk through a module-level import), and
``"<unresolved>"`` for a global the opcodes do not spell out.
"""

from __future__ import annotations

import _compat_pickle
import pickletools
from collections.abc import Iterator
from typing import Any, Final, NamedTuple

from safemodel.errors import IntegrityError

__all__ = ["UNRESOLVED", "pickle_references"]

#: The reference reported for a global whose module or name the audit cannot read
#: from the opcodes alone. No allow-list permits it.
UNRESOLVED: Final = "<unresolved>"

_STRING_OPCODES: Final = frozenset(
    {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
     "BINUNICODE8"}
)  # fmt: skip
_PUT_OPCODES: Final = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GET_OPCODES: Final = frozenset({"GET", "BINGET", "LONG_BINGET"})
_EXT_OPCODES: Final = frozenset({"EXT1", "EXT2", "EXT4"})


class _Mark:
    """The MARK opcode's entry on the simulated stack."""


_MARK: Final = _Mark()
_OBJECT: Final = object()  # any value the audit does not need to know


class _StackEffect(NamedTuple):
    takes_mark: bool  # pops everything down to the topmost MARK, then ...
    pops: int  # ... this many more items
    pushes: tuple[object, ...]


def _stack_effect(opcode: pickletools.OpcodeInfo) -> _StackEffect:
    # The same bookkeeping as pickletools.dis, from the opcode table.
    before, after = opcode.stack_before, opcode.stack_after
    takes_mark = pickletools.markobject in before
    return _StackEffect(
        takes_mark,
        before.index(pickletools.markobject) if takes_mark else len(before),
        tuple(_MARK if item is pickletools.markobject else _OBJECT for item in after),
    )


_STACK_EFFECTS: Final = {opcode.name: _stack_effect(opcode) for opcode in pickletools.opcodes}


def pickle_references(data: bytes) -> list[str]:
    """List every global a pickle would import, without unpickling it.

    The opcodes are read with :mod:`pickletools` and the unpickler's stack and memo
    are simulated just enough to know the two strings a protocol-4 ``STACK_GLOBAL``
    pops, including strings fetched back from the memo. Protocols 0 to 5 are read;
    names are mapped from Python 2 as the unpickler maps them for protocols below 3.

    Parameters
    ----------
    data : bytes
        One pickle, such as the output of ``cloudpickle.dumps(estimator)``.

    Returns
    -------
    list of str
        Sorted, unique references: ``"module.name"``, ``"module:attribute.path"``
        for a dotted name, and ``"<unresolved>"`` for a global whose operands were
        computed rather than written as strings, or that comes from the process-wide
        ``copyreg`` extension registry.

    Raises
    ------
    IntegrityError
        If ``data`` is not exactly one well-formed pickle (truncated, unknown
        opcode, stack or memo misuse, or bytes after the final ``STOP``).

    Examples
    --------
    >>> import pickle
    >>> pickle_references(pickle.dumps(slice(1, 2), protocol=2))
    ['builtins.slice']
    """
    machine = _Machine(data)
    for opcode, arg, pos in _opcodes(data):
        machine.step(opcode.name, arg, pos)
    return sorted(machine.references)


class _Machine:
    """The unpickler's stack and memo, as far as the references need them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.references: set[str] = set()
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}
        self.protocol = 0

    def step(self, name: str, arg: Any, pos: int) -> None:
        # The memo and string opcodes first: they are most of a model pickle.
        if name == "MEMOIZE" or name in _PUT_OPCODES:
            self._memoize(name, arg, pos)
        elif name in _GET_OPCODES:
            if int(arg) not in self.memo:
                raise _malformed(f"the pickle reads memo entry {arg} before writing it")
            self.stack.append(self.memo[int(arg)])
        elif name in _STRING_OPCODES:
            self.stack.append(arg)
        elif name == "STACK_GLOBAL":
            module, qualname = self._pop(2, pos)
            if isinstance(module, str) and isinstance(qualname, str):
                self.references.add(_reference(module, qualname, self.protocol))
            else:
                self.references.add(UNRESOLVED)
            self.stack.append(_OBJECT)
        elif name == "DUP":
            self.stack.extend(self._pop(1, pos) * 2)
        else:
            self._note(name, arg, pos)
            self._apply(name, pos)

    def _memoize(self, name: str, arg: Any, pos: int) -> None:
        if not self.stack or self.stack[-1] is _MARK:
            raise _malformed(f"the memo opcode at byte {pos} has nothing to store")
        self.memo[len(self.memo) if name == "MEMOIZE" else int(arg)] = self.stack[-1]

    def _note(self, name: str, arg: Any, pos: int) -> None:
        """What an opcode says about the protocol, the end, or a global it names."""
        if name == "PROTO":
            self.protocol = int(arg)
        elif name == "STOP" and pos + 1 != len(self.data):
            raise _malformed(f"{len(self.data) - pos - 1} byte(s) follow the end of the pickle")
        elif name in ("GLOBAL", "INST"):
            self.references.add(
                _reference(*_global_operands(self.data, pos), self.protocol))
        elif name in _EXT_OPCODES:
            # The code is looked up in copyreg's registry at load time, which the
            # pickle does not spell out; no model pickle uses extension codes.
            self.references.add(UNRESOLVED)

    def _apply(self, name: str, pos: int) -> None:
        """The opcode's generic stack effect, from the opcode table."""
        takes_mark, count, pushes = _STACK_EFFECTS[name]
        stack = self.stack
        if takes_mark or (name == "POP" and stack and stack[-1] is _MARK):
            while stack and stack[-1] is not _MARK:
                stack.pop()
            if not stack:
                raise _malformed(f"the opcode at byte {pos} needs a MARK that is not there")
            stack.pop()
            if not takes_mark:
                count = 0
        if count:
            self._pop(count, pos)
        stack.extend(pushes)

    def _pop(self, count: int, pos: int) -> list[object]:
        if count == 0:
            return []
        top = self.stack[-count:]
        if len(top) < count or any(item is _MARK for item in top):
            raise _malformed(f"an opcode at byte {pos} pops more items than the stack holds")
        del self.stack[-count:]
        return top


def _reference(module: str, qualname: str, protocol: int) -> str:
    if protocol < 3:
        # Mirror pickle.Unpickler.find_class(fix_imports=True): a protocol 0-2
        # pickle naming "__builtin__ eval" imports builtins.eval.
        if (module, qualname) in _compat_pickle.NAME_MAPPING:
            module, qualname = _compat_pickle.NAME_MAPPING[(module, qualname)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}{':' if '.' in qualname else '.'}{qualname}"


def _global_operands(data: bytes, pos: int) -> tuple[str, str]:
    # GLOBAL and INST carry "module\nname\n". pickletools escape-decodes the lines,
    # the unpickler does not, so read the raw bytes exactly as the unpickler does.
    first = data.index(b"\n", pos + 1)
    second = data.index(b"\n", first + 1)
    try:
        return data[pos + 1 : first].decode("utf-8"), data[first + 1 : second].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"the global named at byte {pos} is not UTF-8") from exc


def _opcodes(data: bytes) -> Iterator[tuple[pickletools.OpcodeInfo, Any, int]]:
    ops = pickletools.genops(data)
    while True:
        try:
            op, arg, pos = next(ops)
        except StopIteration:
            return
        # pickletools is a debugging aid, not a hardened parser: bad input surfaces as
        # ValueError, AssertionError, UnicodeError, or a warning turned into an error.
        except Exception as exc:
            raise _malformed(str(exc)) from exc
        yield op, arg, 0 if pos is None else pos


def _malformed(reason: str) -> IntegrityError:
    return IntegrityError(
        f"The estimator pickle is malformed ({reason}); it is damaged or was not "
        "written by safemodel. Rebuild the bundle from the trained estimator.",
        found=reason,
    )
