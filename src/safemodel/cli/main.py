"""The ``safemodel`` command line: the parser, dispatch, exit codes and error handling.

::

    safemodel inspect PATH                  what a bundle holds (never unpickles)
    safemodel verify PATH                   integrity and golden outputs, here and now
    safemodel diff A B                      contract, policy, environment and outputs
    safemodel drift BUNDLE DATA.csv         production data against the training profile
    safemodel store ROOT list|versions|get|put|promote|rollback|history ...
    safemodel serve STORE [--alias A]       every model behind an alias over HTTP
    safemodel requirements PATH             pip lines of the packages it was built with
    safemodel sidecar sign|verify PATH      OpenSSF model signing signature beside a bundle
    safemodel keys show                     your public key and key id (created if missing)
    safemodel trust add|list|remove         the public keys whose bundles you load
    safemodel demo [--output DIR]

``verify``, ``diff``, ``drift``, ``store`` and ``serve`` load only bundles a trusted key
signed; ``--trusted-key PEM`` trusts one more key, ``--trust`` loads any on purpose.
``--sidecar`` also requires a model signing signature beside each bundle
(``<bundle>.sig``); ``inspect --sidecar`` checks it too, unpickling nothing.

Every command prints a readable table, or JSON with ``--json``. With ``--store ROOT``,
``inspect``, ``verify``, ``diff`` and ``drift`` take ``NAME[@VERSION|SPECIFIER|ALIAS]``
instead of file paths.

Exit codes (also in ``docs/cli.md``):

* 0 -- success;
* 1 -- a check failed: outputs do not reproduce, integrity does not hold, drift
  alerts, a promotion or rollback was refused;
* 2 -- usage error, unreadable input file, or any other safemodel error;
* 3 -- internal error (a bug: please report it with the ``--debug`` traceback);
* 130 -- interrupted;
* 141 -- standard output was closed early (``safemodel --json inspect m | head``):
  nothing more is written, no traceback, the code a shell gives a tool SIGPIPE ended.

Errors are one line on standard error; ``--debug`` adds the traceback and safemodel's
debug log.

Adding a command group: write a module with ``register(subparsers)`` that adds its
parsers (with :func:`~safemodel.cli._common.common_options` and the other option
groups as ``parents``) and sets ``run=`` to a function ``(args) -> int``; raise
``UsageError`` (exit 2) or ``Failed`` (exit 1), or any ``SafeModelError`` (exit 2).
Then add its ``register`` to :data:`COMMAND_GROUPS`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from safemodel.cli import bundle, keys, requirements, serve, sidecar, store
from safemodel.cli._common import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Failed,
    Parser,
    Subparsers,
    UsageError,
    common_options,
    failed,
)
from safemodel.cli._output import error, one_line, say_json
from safemodel.errors import (
    ContractViolation,
    GoldenMismatchError,
    IncompatibleEnvironmentError,
    IntegrityError,
    SafeModelError,
)

__all__ = ["COMMAND_GROUPS", "EXIT_FAILED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "main"]


def _register_demo(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("demo", parents=[common_options()],
                              help="build and tour a demo bundle")
    p.add_argument("--output", metavar="DIR", help="folder to write the demo into")
    p.set_defaults(run=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        # Through sys.modules, so the demo can be replaced (tests) without importing it.
        demo = importlib.import_module("safemodel.cli.demo")
    except ImportError as exc:
        raise SafeModelError(f"The demo is not available in this installation ({exc}).") \
            from None
    argv = [] if args.output is None else ["--output", args.output]
    code: int = demo.main(argv)
    return code


COMMAND_GROUPS: tuple[Callable[[Subparsers], None], ...] = (
    bundle.register,
    store.register,
    serve.register,
    keys.register,
    requirements.register,
    sidecar.register,
    _register_demo,
)
"""The ``register(subparsers)`` functions of the command groups, in help order."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        0 success, 1 a check failed, 2 usage or input error, 3 internal error,
        130 interrupted, 141 standard output closed by its reader.

    Examples
    --------
    >>> from safemodel.cli import main
    >>> main(["verify", "churn-1.2.0.safemodel"])   # doctest: +SKIP
    0
    """
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # a reader that left shows up here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _reader_left()


def _reader_left() -> int:
    """The reader of stdout closed it (``| head``): stop quietly, as Unix tools do.

    stdout is pointed at the null device so that the interpreter's final flush of the
    unwritten rest cannot raise again (the recipe of Python's ``signal`` docs).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (tests, notebooks)
        pass
    return EXIT_BROKEN_PIPE


def _main(arguments: list[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(arguments)
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if getattr(args, "run", None) is None:
        parser.print_usage(sys.stderr)
        error("a command is required (see 'safemodel --help')")
        return EXIT_USAGE
    with _logging(args.debug):
        try:
            code: int = args.run(args)
            return code
        except KeyboardInterrupt:
            error("interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            raise
        except Exception as exc:
            return _handle(exc, args)


def _parser() -> Parser:
    from safemodel import __version__

    parser = Parser(prog="safemodel",
                    description="Inspect, verify, compare, monitor and promote safemodel "
                                "bundles.",
                    epilog="Exit codes: 0 ok, 1 check failed, 2 usage or input error, "
                           "3 internal error.",
                    parents=[common_options(default=False)])
    parser.set_defaults(run=None)
    parser.add_argument("--version", action="version", version=f"safemodel {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in COMMAND_GROUPS:
        register(subparsers)
    return parser


def _handle(exc: BaseException, args: argparse.Namespace) -> int:
    """Turn an exception into one line on stderr (and JSON on stdout with --json)."""
    if args.debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, GoldenMismatchError | IncompatibleEnvironmentError | IntegrityError):
        exc = failed(exc, args)  # a check failed (exit 1), whichever command ran it
    if isinstance(exc, Failed):
        code, kind, message = EXIT_FAILED, exc.kind, str(exc)
    elif isinstance(exc, UsageError):
        code, kind, message = EXIT_USAGE, "usage", str(exc)
    elif isinstance(exc, SafeModelError | OSError):
        code, kind, message = EXIT_USAGE, type(exc).__name__, one_line(exc)
    else:
        code, kind = EXIT_INTERNAL, type(exc).__name__
        message = (f"internal error: {type(exc).__name__}: {one_line(exc)} (a bug; rerun with "
                   "--debug and report the traceback)")
    if args.json:
        payload: dict[str, Any] = {"ok": False, "error": kind, "message": message,
                                   "exit_code": code}
        if isinstance(exc, Failed):
            payload.update(exc.payload)
        if isinstance(exc, ContractViolation):  # the line shows a few; this is every one
            payload["failures"] = [f.to_dict() for f in exc.failures]
        say_json(payload)
    error(message)
    return code


@contextlib.contextmanager
def _logging(debug: bool) -> Iterator[None]:
    """safemodel's warnings (and with --debug its debug log) on stderr, for this run."""
    log = logging.getLogger("safemodel")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("safemodel: %(levelname)s: %(message)s"))
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    level = log.level
    log.addHandler(handler)
    if debug:
        log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
