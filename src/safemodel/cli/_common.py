"""What every command group shares: exit codes, the errors that set them, the parser
class, the option groups, and how a command finds and loads bundles.

A command group is a module with ``register(subparsers)``; it builds its parsers with
the option groups below as ``parents`` and sets ``run=`` to a function
``(args) -> int`` (see :mod:`safemodel.cli.main`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

from safemodel.cli._output import first_line, one_line, say
from safemodel.errors import (
    BundleFormatError,
    GoldenMismatchError,
    IncompatibleEnvironmentError,
    IntegrityError,
    SafeModelError,
    StoreError,
)

if TYPE_CHECKING:
    from safemodel.core.bundle import ModelBundle
    from safemodel.store.store import BundleStore

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Failed",
    "Parser",
    "Subparsers",
    "UsageError",
    "common_options",
    "failed",
    "load_bundle",
    "load_options",
    "loading_options",
    "locate",
    "located_options",
    "open_store",
    "sidecar_options",
]

EXIT_OK = 0
"""Success."""
EXIT_FAILED = 1
"""A check failed: verification, integrity, drift alert, refused promotion."""
EXIT_USAGE = 2
"""Usage error, unreadable input, or another safemodel error."""
EXIT_INTERNAL = 3
"""An unexpected exception: a bug."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C): 128 + SIGINT, as a shell reports it."""
EXIT_BROKEN_PIPE = 141
"""The reader of standard output went away (``| head``): 128 + SIGPIPE, as a shell
reports a Unix tool that SIGPIPE ended."""

SIGNING_KEY_ENV = "SAFEMODEL_SIGNING_KEY"

Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
"""What a command group's ``register(subparsers)`` receives."""


class UsageError(Exception):
    """Bad command-line arguments (exit 2)."""


class Failed(Exception):
    """A check failed (exit 1); the message is the one line for standard error."""

    def __init__(self, message: str, kind: str, payload: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.kind = kind
        self.payload = dict(payload)


class Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def failed(exc: SafeModelError, args: argparse.Namespace, prefix: str = "",
           **context: Any) -> Failed:
    """A failed check (exit 1): the readable diff on stdout now, the verdict for stderr.

    Golden mismatches print their multi-line account (unless --json, where it goes in
    the JSON object as ``detail`` with ``mismatches``); other errors are one line.
    """
    payload: dict[str, Any] = {**context, "detail": str(exc)}
    if isinstance(exc, GoldenMismatchError):
        payload["mismatches"] = exc.mismatches
        payload["environment_diff"] = {k: list(v) for k, v in exc.environment_diff.items()}
        if not args.json:
            say(str(exc))
        return Failed(prefix + first_line(exc), type(exc).__name__, payload)
    if isinstance(exc, IncompatibleEnvironmentError):  # the versions as data (issue 20)
        payload.update({k: v for k, v in exc.to_dict().items() if k not in ("error", "message")})
        if not args.json:
            say(str(exc))
        return Failed(prefix + first_line(exc), type(exc).__name__, payload)
    if isinstance(exc, IntegrityError | BundleFormatError):
        payload["member"] = exc.member
    return Failed(prefix + one_line(exc), type(exc).__name__, payload)


# ------------------------------------------------------------ option groups


def common_options(default: Any = argparse.SUPPRESS) -> Parser:
    """``--json`` and ``--debug``.

    Accepted before and after the command; a command's copy (default ``SUPPRESS``)
    sets the value only when given, so it never hides the top-level one.
    """
    parser = Parser(add_help=False)
    parser.add_argument("--json", action="store_true", default=default,
                        help="print JSON for machines instead of tables")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show tracebacks and safemodel's debug log")
    return parser


def sidecar_options() -> Parser:
    """``--sidecar``, one meaning wherever a bundle is read: a model signing signature
    beside it is required (``load(sidecar=True)``, ``BundleStore(root, sidecar=True)``)."""
    parser = Parser(add_help=False)
    _add_sidecar(parser)
    return parser


def _add_sidecar(parser: Parser) -> None:
    parser.add_argument("--sidecar", action="store_true",
                        help="require an OpenSSF model signing signature beside each "
                             "bundle (<bundle>.sig, as `safemodel sidecar sign` writes it; "
                             "in a store <version>.safemodel.sig), verified over the bytes "
                             "read with a trusted ECDSA key, besides the bundle's own "
                             "signature; a store's put checks or adds them "
                             "(BundleStore(root, sidecar=True))")


def loading_options() -> Parser:
    """How bundles are loaded: ``--trust``, ``--trusted-key``, ``--signing-key``,
    ``--allowed-modules``, ``--environment``, ``--sidecar``.

    Read them with :func:`load_options`; a new load option is one argument here and
    one entry there.
    """
    parser = Parser(add_help=False)
    parser.add_argument("--trusted-key", metavar="PEM", type=Path, action="append",
                        dest="trusted_keys", help="also trust bundles signed by this public "
                        "key file (repeatable); your own key and `safemodel trust` keys "
                        "are always trusted")
    parser.add_argument("--trust", action="store_true",
                        help="load bundles no trusted key signed, on purpose (their pickle "
                             "runs code)")
    parser.add_argument("--signing-key", metavar="KEY",
                        help="require a signature by KEY (hmac:SECRET, a PEM public or private "
                             f"key, or @FILE to read it from FILE); default ${SIGNING_KEY_ENV}")
    parser.add_argument("--allowed-modules", metavar="M1,M2", type=_module_list,
                        help="refuse, before unpickling, estimators whose pickle "
                             "references anything else (comma-separated entries; 'default' "
                             "stands for safemodel.DEFAULT_ALLOWED_MODULES, e.g. "
                             "default,mypackage)")
    parser.add_argument("--environment", choices=("warn", "strict", "ignore"),
                        default="warn", help="how to treat package versions that differ "
                                             "from build time (default: warn)")
    _add_sidecar(parser)
    return parser


def located_options() -> Parser:
    """``--store ROOT``: name bundles as ``NAME[@VERSION|SPEC|ALIAS]`` (see :func:`locate`)."""
    parser = Parser(add_help=False)
    parser.add_argument("--store", metavar="ROOT", type=Path,
                        help="read bundles from this store: give NAME[@VERSION|SPEC|ALIAS] "
                             "instead of file paths")
    return parser


def _module_list(text: str) -> tuple[str, ...]:
    from safemodel.io.audit import DEFAULT_ALLOWED_MODULES

    modules: list[str] = []
    for entry in (m.strip() for m in text.split(",")):
        if entry == "default":
            modules.extend(DEFAULT_ALLOWED_MODULES)
        elif entry:
            modules.append(entry)
    if not modules:
        raise argparse.ArgumentTypeError("give at least one entry, e.g. default,mypackage")
    return tuple(modules)


def _signing_key(args: argparse.Namespace) -> str | None:
    key: str | None = args.signing_key
    if key is None:
        return os.environ.get(SIGNING_KEY_ENV) or None
    if key.startswith("@"):
        try:
            return Path(key[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read the signing key file {key[1:]!r}: "
                             f"{exc.strerror or exc}") from None
    return key


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`safemodel.load` from the :func:`loading_options`."""
    return {"signing_key": _signing_key(args), "trusted_keys": args.trusted_keys,
            "trust": args.trust, "allowed_modules": args.allowed_modules,
            "environment": args.environment, "sidecar": args.sidecar}


# ----------------------------------------------------------- finding bundles


def open_store(root: Path, *, must_exist: bool = True, **options: Any) -> BundleStore:
    """The store at ``root``; an error unless it exists (or ``must_exist=False``)."""
    from safemodel.store.store import BundleStore

    if must_exist and not root.is_dir():
        raise StoreError(f"No store at {str(root)!r}: the folder does not exist.")
    return BundleStore(root, **options)


def locate(args: argparse.Namespace, ref: str) -> Path:
    """The bundle file ``ref`` names: a path, or ``NAME[@SELECTOR]`` with --store."""
    if args.store is None:
        return Path(ref)
    name, _, selector = ref.partition("@")
    return open_store(args.store).path(name, selector or None)


def load_bundle(args: argparse.Namespace, ref: str) -> tuple[Path, ModelBundle]:
    """The file ``ref`` names (see :func:`locate`) and its bundle, loaded with the
    command's :func:`loading_options`; through the store with ``--store``, so its
    path, history and signer checks apply."""
    from safemodel.io.archive import load

    if args.store is None:
        return Path(ref), load(Path(ref), **load_options(args))
    name, _, selector = ref.partition("@")
    store = open_store(args.store, **load_options(args))
    return store.path(name, selector or None), store.get(name, selector or None)
