"""The ``safemodel`` command line.

::

    safemodel inspect PATH                  what a bundle holds (never unpickles)
    safemodel verify PATH                   integrity and golden outputs, here and now
    safemodel diff A B                      contract, policy, environment and outputs
    safemodel drift BUNDLE DATA.csv         production data against the training profile
    safemodel store ROOT list|versions|get|put|promote|rollback|history ...
    safemodel demo [--output DIR]
    safemodel requirements PATH             pip lines of the packages it was built with

Every command prints a readable table, or JSON with ``--json``. With ``--store ROOT``,
``inspect``, ``verify``, ``diff`` and ``drift`` take ``NAME[@VERSION|SPECIFIER|ALIAS]``
instead of file paths.

Exit codes (also in ``docs/cli.md``):

* 0 -- success;
* 1 -- a check failed: outputs do not reproduce, integrity does not hold, drift
  alerts, a promotion or rollback was refused;
* 2 -- usage error, unreadable input file, or any other safemodel error;
* 3 -- internal error (a bug: please report it with the ``--debug`` traceback);
* 130 -- interrupted.

Errors are one line on standard error; ``--debug`` adds the traceback and safemodel's
debug log.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from safemodel.errors import (
    BundleFormatError,
    GoldenMismatchError,
    IncompatibleEnvironmentError,
    IntegrityError,
    SafeModelError,
    StoreError,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from safemodel.core.bundle import ModelBundle
    from safemodel.io.manifest import BundleInfo
    from safemodel.store.store import BundleStore

__all__ = ["EXIT_FAILED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
"""Success."""
EXIT_FAILED = 1
"""A check failed: verification, integrity, drift alert, refused promotion."""
EXIT_USAGE = 2
"""Usage error, unreadable input, or another safemodel error."""
EXIT_INTERNAL = 3
"""An unexpected exception: a bug."""
EXIT_INTERRUPTED = 130

_SIGNING_KEY_ENV = "SAFEMODEL_SIGNING_KEY"


class _UsageError(Exception):
    """Bad command-line arguments (exit 2)."""


class _Failed(Exception):
    """A check failed (exit 1); the message is the one line for standard error."""

    def __init__(self, message: str, kind: str, payload: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.kind = kind
        self.payload = dict(payload)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        0 success, 1 a check failed, 2 usage or input error, 3 internal error.

    Examples
    --------
    >>> from safemodel.cli import main
    >>> main(["verify", "churn-1.2.0.safemodel"])   # doctest: +SKIP
    0
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(arguments)
    except _UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if getattr(args, "run", None) is None:
        parser.print_usage(sys.stderr)
        _error("a command is required (see 'safemodel --help')")
        return EXIT_USAGE
    with _logging(args.debug):
        try:
            code: int = args.run(args)
            return code
        except KeyboardInterrupt:
            _error("interrupted")
            return EXIT_INTERRUPTED
        except Exception as exc:
            return _handle(exc, args)


def _handle(exc: BaseException, args: argparse.Namespace) -> int:
    """Turn an exception into one line on stderr (and JSON on stdout with --json)."""
    if args.debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, GoldenMismatchError | IncompatibleEnvironmentError):
        exc = _failed(exc, args)
    if isinstance(exc, _Failed):
        code, kind, message = EXIT_FAILED, exc.kind, str(exc)
    elif isinstance(exc, _UsageError):
        code, kind, message = EXIT_USAGE, "usage", str(exc)
    elif isinstance(exc, SafeModelError | OSError):
        code, kind, message = EXIT_USAGE, type(exc).__name__, _one_line(exc)
    else:
        code, kind = EXIT_INTERNAL, type(exc).__name__
        message = (f"internal error: {type(exc).__name__}: {_one_line(exc)} (a bug; rerun with "
                   "--debug and report the traceback)")
    if args.json:
        payload: dict[str, Any] = {"ok": False, "error": kind, "message": message,
                                   "exit_code": code}
        if isinstance(exc, _Failed):
            payload.update(exc.payload)
        _print_json(payload)
    _error(message)
    return code


def _failed(exc: SafeModelError, args: argparse.Namespace, prefix: str = "",
            **context: Any) -> _Failed:
    """A failed check (exit 1): the readable diff on stdout now, the verdict for stderr.

    Golden mismatches print their multi-line account (unless --json, where it goes in
    the JSON object as ``detail`` with ``mismatches``); other errors are one line.
    """
    payload: dict[str, Any] = {**context, "detail": str(exc)}
    if isinstance(exc, GoldenMismatchError):
        payload["mismatches"] = exc.mismatches
        payload["environment_diff"] = {k: list(v) for k, v in exc.environment_diff.items()}
        if not args.json:
            _print(str(exc))
        return _Failed(prefix + _first_line(exc), type(exc).__name__, payload)
    if isinstance(exc, IncompatibleEnvironmentError):  # the versions as data (issue 20)
        payload.update({k: v for k, v in exc.to_dict().items() if k not in ("error", "message")})
        if not args.json:
            _print(str(exc))
        return _Failed(prefix + _first_line(exc), type(exc).__name__, payload)
    if isinstance(exc, IntegrityError | BundleFormatError):
        payload["member"] = exc.member
    return _Failed(prefix + _one_line(exc), type(exc).__name__, payload)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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


# ------------------------------------------------------------------- output


def _print(text: str = "") -> None:
    print(text, file=sys.stdout)


def _error(message: str) -> None:
    print(f"safemodel: error: {message}", file=sys.stderr)


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become null, numpy scalars numbers."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        with contextlib.suppress(TypeError, ValueError):
            return _jsonable(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return _jsonable(tolist())
    return str(value)


def _print_json(data: Any) -> None:
    _print(json.dumps(_jsonable(data), indent=2, allow_nan=False))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    cells = [[str(h) for h in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    return "\n".join(lines)


def _pairs(rows: Sequence[tuple[str, Any]], indent: str = "  ") -> str:
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{indent}{k.ljust(width)}  {_cell(v)}".rstrip() for k, v in rows)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _listing(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... (+{len(values) - limit} more)" if len(values) > limit else "")


# ------------------------------------------------------------------ parsing


def _parser() -> _Parser:
    from safemodel import __version__

    def options(parser: _Parser, default: Any) -> _Parser:
        parser.add_argument("--json", action="store_true", default=default,
                            help="print JSON for machines instead of tables")
        parser.add_argument("--debug", action="store_true", default=default,
                            help="show tracebacks and safemodel's debug log")
        return parser

    # Accepted before and after the command; a command's copy sets the value only when
    # given, so it never hides the top-level one.
    common = options(_Parser(add_help=False), argparse.SUPPRESS)

    loading = _Parser(add_help=False)
    loading.add_argument("--signing-key", metavar="KEY",
                         help="require a signature by KEY (an HMAC secret, PEM text, or "
                              f"@FILE to read it from FILE); default ${_SIGNING_KEY_ENV}")
    loading.add_argument("--allowed-modules", metavar="M1,M2", type=_module_list,
                         help="refuse, before unpickling, estimators whose pickle "
                              "references anything else (comma-separated entries; 'default' "
                              "stands for safemodel.DEFAULT_ALLOWED_MODULES, e.g. "
                              "default,mypackage)")
    loading.add_argument("--environment", choices=("warn", "strict", "ignore"),
                         default="warn", help="how to treat package versions that differ "
                                              "from build time (default: warn)")

    located = _Parser(add_help=False)
    located.add_argument("--store", metavar="ROOT", type=Path,
                         help="read bundles from this store: give NAME[@VERSION|SPEC|ALIAS] "
                              "instead of file paths")

    parser = _Parser(prog="safemodel",
                     description="Inspect, verify, compare, monitor and promote safemodel "
                                 "bundles.",
                     epilog="Exit codes: 0 ok, 1 check failed, 2 usage or input error, "
                            "3 internal error.")
    options(parser, False)
    parser.set_defaults(run=None)
    parser.add_argument("--version", action="version", version=f"safemodel {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("inspect", parents=[common, located],
                       help="show what a bundle holds (never unpickles)")
    p.add_argument("bundle", metavar="PATH")
    p.set_defaults(run=_cmd_inspect)

    p = sub.add_parser("verify", parents=[common, loading, located],
                       help="check integrity and golden outputs in this environment")
    p.add_argument("bundle", metavar="PATH")
    p.set_defaults(run=_cmd_verify)

    p = sub.add_parser("diff", parents=[common, loading, located],
                       help="what changed between two bundles")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.set_defaults(run=_cmd_diff)

    p = sub.add_parser("drift", parents=[common, loading, located],
                       help="compare data with the bundle's training profile")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("data", metavar="DATA", type=Path, help="a .csv or .parquet file")
    p.add_argument("--html", metavar="OUT", type=Path, help="also write an HTML report")
    p.set_defaults(run=_cmd_drift)

    p = sub.add_parser("demo", parents=[common], help="build and tour a demo bundle")
    p.add_argument("--output", metavar="DIR", help="folder to write the demo into")
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser("store", parents=[common], help="list, add, promote and roll back "
                                                       "bundles in a store")
    p.add_argument("root", metavar="ROOT", type=Path)
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=True)

    a = actions.add_parser("list", parents=[common], help="names, versions and aliases")
    a.set_defaults(run=_cmd_store_list)
    a = actions.add_parser("versions", parents=[common], help="the versions of NAME")
    a.add_argument("name", metavar="NAME")
    a.set_defaults(run=_cmd_store_versions)
    a = actions.add_parser("get", parents=[common, loading],
                           help="resolve and verify NAME's VERSION, SPECIFIER or ALIAS")
    a.add_argument("name", metavar="NAME")
    a.add_argument("version", metavar="VERSION", nargs="?",
                   help="a version, a specifier such as '>=1.2,<2', or an alias "
                        "(default: the highest release)")
    a.set_defaults(run=_cmd_store_get)
    a = actions.add_parser("put", parents=[common], help="add bundle files as new versions")
    a.add_argument("paths", metavar="PATH", nargs="+", type=Path)
    a.set_defaults(run=_cmd_store_put)
    a = actions.add_parser("promote", parents=[common, loading],
                           help="verify VERSION, then point ALIAS at it")
    a.add_argument("name", metavar="NAME")
    a.add_argument("version", metavar="VERSION")
    a.add_argument("--alias", default="production", help="default: production")
    a.set_defaults(run=_cmd_store_promote)
    a = actions.add_parser("rollback", parents=[common, loading],
                           help="verify ALIAS's previous target, then point ALIAS back at it")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--alias", default="production", help="default: production")
    a.set_defaults(run=_cmd_store_rollback)
    a = actions.add_parser("history", parents=[common], help="puts, promotions, rollbacks")
    a.add_argument("name", metavar="NAME")
    a.set_defaults(run=_cmd_store_history)
    from safemodel.cli.requirements import register as register_requirements

    register_requirements(sub)
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
        return os.environ.get(_SIGNING_KEY_ENV) or None
    if key.startswith("@"):
        try:
            return Path(key[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise _UsageError(f"cannot read the signing key file {key[1:]!r}: "
                              f"{exc.strerror or exc}") from None
    return key


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"signing_key": _signing_key(args), "allowed_modules": args.allowed_modules,
            "environment": args.environment}


def _store(root: Path, *, must_exist: bool = True, **options: Any) -> BundleStore:
    from safemodel.store.store import BundleStore

    if must_exist and not root.is_dir():
        raise StoreError(f"No store at {str(root)!r}: the folder does not exist.")
    return BundleStore(root, **options)


def _locate(args: argparse.Namespace, ref: str) -> Path:
    """The bundle file ``ref`` names: a path, or ``NAME[@SELECTOR]`` with --store."""
    if args.store is None:
        return Path(ref)
    name, _, selector = ref.partition("@")
    return _store(args.store).path(name, selector or None)


def _load(args: argparse.Namespace, path: Path) -> ModelBundle:
    from safemodel.io.archive import load

    return load(path, **_load_options(args))


# ------------------------------------------------------------------ inspect


def _cmd_inspect(args: argparse.Namespace) -> int:
    from safemodel.io.archive import inspect

    info = inspect(_locate(args, args.bundle))
    if args.json:
        _print_json(info.to_dict())
    else:
        _print(_describe_info(info))
    return EXIT_OK


def _describe_info(info: BundleInfo) -> str:
    parts = [f"{info.name} {info.version}", _pairs([
        ("path", info.path),
        ("fingerprint", info.fingerprint),
        ("format", info.format_version),
        ("created", info.created),
        ("methods", ", ".join(info.methods)),
        ("signed", info.signed),
    ])]
    parts += ["", "Environment (at build time)",
              _pairs([(k, v) for k, v in info.environment.items()])]
    columns = list((info.contract or {}).get("columns", []))
    parts += ["", f"Contract: {len(columns)} columns", _table(
        ["column", "type", "kind", "nullable", "allowed values / observed range"],
        [[c.get("name"), c.get("dtype"), c.get("kind"), bool(c.get("nullable")), _allowed(c)]
         for c in columns],
    )]
    parts += ["", "Policy", _pairs(list(_flatten(info.policy or {}).items()))]
    golden = dict(info.golden or {})
    rejected = golden.get("rejected") or {}
    parts += ["", "Golden outputs", _pairs([
        ("rows", f"{golden.get('rows')} ({golden.get('edge_rows', 0)} edge cases)"),
        ("methods", ", ".join(golden.get("methods", []))),
        ("rejected rows", len(rejected)),
        ("tolerance", f"rtol={golden.get('rtol')}, atol={golden.get('atol')}"),
    ])]
    refs = list(info.pickle_references)
    parts += ["", f"Pickle references ({len(refs)}; not unpickled)",
              "\n".join(f"  {r}" for r in refs) or "  -"]
    return "\n".join(parts)


def _allowed(column: Mapping[str, Any]) -> str:
    if column.get("categories") is not None:
        return _listing(list(column["categories"]))
    if column.get("minimum") is not None:
        return f"{_cell(column['minimum'])} .. {_cell(column.get('maximum'))}"
    return ""


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ------------------------------------------------------------------- verify


def _cmd_verify(args: argparse.Namespace) -> int:
    path = _locate(args, args.bundle)
    try:
        bundle = _load(args, path)
    except (GoldenMismatchError, IntegrityError, IncompatibleEnvironmentError) as exc:
        raise _failed(exc, args, "verification failed: ", bundle=str(path)) from exc
    # load() verified already; this second, cheap run gives the report to show.
    verification = bundle.verify()
    if args.json:
        _print_json({**verification.to_dict(), "fingerprint": bundle.fingerprint})
    else:
        golden = bundle.golden
        _print(f"{bundle.name} {bundle.version}: OK - integrity and golden outputs hold "
               f"({len(golden.inputs)} golden rows; {', '.join(sorted(golden.outputs))})")
        for package, (before, now) in sorted(verification.environment_diff.items()):
            _print(f"  {package}: built with {before or 'absent'}, running {now or 'absent'}")
    return EXIT_OK


# --------------------------------------------------------------------- diff


def _cmd_diff(args: argparse.Namespace) -> int:
    from safemodel.io.archive import inspect

    path_a, path_b = _locate(args, args.a), _locate(args, args.b)
    info_a, info_b = inspect(path_a), inspect(path_b)
    bundle_a, bundle_b = _load(args, path_a), _load(args, path_b)
    diff = {
        "a": _identity(info_a),
        "b": _identity(info_b),
        "same_content": info_a.fingerprint == info_b.fingerprint,
        "contract": _contract_diff(info_a.contract or {}, info_b.contract or {}),
        "policy": _mapping_diff(_flatten(info_a.policy or {}), _flatten(info_b.policy or {})),
        "environment": _mapping_diff(dict(info_a.environment), dict(info_b.environment)),
        "methods": _added_removed(list(info_a.methods), list(info_b.methods)),
        "outputs": _outputs_diff(bundle_a, bundle_b),
    }
    if args.json:
        _print_json(diff)
    else:
        _print(_describe_diff(diff))
    return EXIT_OK


def _identity(info: BundleInfo) -> dict[str, Any]:
    return {"name": info.name, "version": str(info.version), "fingerprint": info.fingerprint,
            "path": info.path}


def _added_removed(a: Sequence[Any], b: Sequence[Any]) -> dict[str, list[Any]]:
    return {"added": [x for x in b if x not in a], "removed": [x for x in a if x not in b]}


def _mapping_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[Any]]:
    keys = [*a, *(k for k in b if k not in a)]
    return {k: [a.get(k), b.get(k)] for k in keys if a.get(k) != b.get(k)}


def _contract_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    cols_a = {c["name"]: c for c in a.get("columns", [])}
    cols_b = {c["name"]: c for c in b.get("columns", [])}
    changed: dict[str, Any] = {}
    for name in (n for n in cols_a if n in cols_b):
        ca, cb = cols_a[name], cols_b[name]
        change: dict[str, Any] = {
            field: [ca.get(field), cb.get(field)]
            for field in ("dtype", "kind", "nullable", "impute") if ca.get(field) != cb.get(field)
        }
        cats = _added_removed(list(ca.get("categories") or []), list(cb.get("categories") or []))
        if cats["added"] or cats["removed"]:
            change["categories"] = cats
        if change:
            changed[name] = change
    return {**_added_removed(list(cols_a), list(cols_b)), "changed": changed}


def _outputs_diff(a: ModelBundle, b: ModelBundle) -> dict[str, Any]:
    """Score the union of both golden fixtures with both bundles and compare."""
    import numpy as np
    import pandas as pd

    union = pd.concat([a.golden.inputs, b.golden.inputs], ignore_index=True)
    with contextlib.suppress(TypeError, ValueError):
        union = union.drop_duplicates(ignore_index=True)
    scored_a, rows_a = _score_all(a, union)
    scored_b, rows_b = _score_all(b, union)
    both = np.intersect1d(rows_a, rows_b)
    methods: dict[str, Any] = {}
    for method in (m for m in a.methods if m in b.methods):
        out_a, out_b = scored_a[method], scored_b[method]
        if isinstance(out_a, str) or isinstance(out_b, str):
            methods[method] = {"rows_compared": 0, "rows_differing": None, "max_abs_diff": None,
                               "detail": out_a if isinstance(out_a, str) else out_b,
                               "examples": []}
            continue
        methods[method] = _compare(out_a[np.searchsorted(rows_a, both)],
                                   out_b[np.searchsorted(rows_b, both)], both)
    return {
        "rows": len(union),
        "scored_by_both": len(both),
        "rejected_only_by_a": [int(r) for r in np.setdiff1d(rows_b, rows_a)],
        "rejected_only_by_b": [int(r) for r in np.setdiff1d(rows_a, rows_b)],
        "methods": methods,
    }


def _score_all(bundle: ModelBundle, union: pd.DataFrame
               ) -> tuple[dict[str, np.ndarray | str], np.ndarray]:
    """Outputs per method on the rows the bundle accepts (an error text if it raised)."""
    import numpy as np

    frame = union[[c for c in bundle.contract.names if c in union.columns]]
    prepared = bundle.prepare(frame, invalid="drop")
    outputs: dict[str, np.ndarray | str] = {}
    for method in bundle.methods:
        try:
            outputs[method] = np.asarray(getattr(bundle.estimator, method)(prepared.frame))
        except Exception as exc:  # the estimator's own failure is part of the difference
            outputs[method] = f"{bundle.name} {bundle.version}: {type(exc).__name__}: {exc}"
    return outputs, np.asarray(prepared.rows)


def _compare(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    result: dict[str, Any] = {"rows_compared": len(rows), "rows_differing": None,
                              "max_abs_diff": None, "detail": None, "examples": []}
    if a.shape[1:] != b.shape[1:]:
        result["detail"] = f"output shape per row changed from {a.shape[1:]} to {b.shape[1:]}"
        result["rows_differing"] = len(rows)
        return result
    if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
        fa, fb = a.astype("float64"), b.astype("float64")
        equal = (fa == fb) | (np.isnan(fa) & np.isnan(fb))
        if len(rows) and not equal.all():
            with np.errstate(invalid="ignore"):
                diff = np.abs(fa - fb)[~equal]
            finite = diff[np.isfinite(diff)]
            result["max_abs_diff"] = float(finite.max()) if finite.size else math.inf
    else:
        equal = np.array([x == y or (pd.isna(x) and pd.isna(y))
                          for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)],
                         dtype=bool).reshape(a.shape)
    row_equal = equal.reshape(len(rows), -1).all(axis=1) if len(rows) else equal
    differing = np.flatnonzero(~row_equal)
    result["rows_differing"] = len(differing)
    result["examples"] = [{"row": int(rows[i]), "a": np.asarray(a[i]).tolist(),
                           "b": np.asarray(b[i]).tolist()}
                          for i in differing[:3]]
    return result


def _describe_diff(diff: Mapping[str, Any]) -> str:
    a, b = diff["a"], diff["b"]
    lines = [_table(["", "name", "version", "fingerprint", "path"], [
        ["A", a["name"], a["version"], a["fingerprint"][:16], a["path"]],
        ["B", b["name"], b["version"], b["fingerprint"][:16], b["path"]],
    ], indent="")]
    if diff["same_content"]:
        lines.append("Same content (equal fingerprints).")
    contract = diff["contract"]
    lines += ["", "Contract"]
    body = []
    if contract["added"]:
        body.append(f"  columns added: {', '.join(contract['added'])}")
    if contract["removed"]:
        body.append(f"  columns removed: {', '.join(contract['removed'])}")
    for column, change in contract["changed"].items():
        items = [f"{f} {_cell(v[0])} -> {_cell(v[1])}" for f, v in change.items()
                 if f != "categories"]
        if "categories" in change:
            cats = change["categories"]
            if cats["added"]:
                items.append(f"categories added {_listing(cats['added'])}")
            if cats["removed"]:
                items.append(f"categories removed {_listing(cats['removed'])}")
        body.append(f"  {column}: " + "; ".join(items))
    lines += body or ["  no change"]
    for title, key in (("Policy", "policy"), ("Environment (at build time)", "environment")):
        lines += ["", title]
        changes = diff[key]
        lines += ([f"  {k}: {_cell(v[0])} -> {_cell(v[1])}" for k, v in changes.items()]
                  or ["  no change"])
    methods = diff["methods"]
    if methods["added"] or methods["removed"]:
        lines += ["", "Methods", f"  added: {_listing(methods['added']) or '-'}; "
                                 f"removed: {_listing(methods['removed']) or '-'}"]
    out = diff["outputs"]
    lines += ["", f"Outputs on the union of both golden inputs: {out['rows']} rows, "
                  f"{out['scored_by_both']} accepted by both"]
    rows = [[m, r["detail"] or f"{r['rows_differing']} of {r['rows_compared']}",
             r["max_abs_diff"]] for m, r in out["methods"].items()]
    lines.append(_table(["method", "rows differing", "max abs diff"], rows))
    for side in ("a", "b"):
        rejected = out[f"rejected_only_by_{side}"]
        if rejected:
            lines.append(f"  rejected only by {side.upper()}: rows {_listing(rejected)}")
    return "\n".join(lines)


# -------------------------------------------------------------------- drift


def _cmd_drift(args: argparse.Namespace) -> int:
    frame = _read_data(args.data)
    bundle = _load(args, _locate(args, args.bundle))
    report = bundle.drift(frame)
    if args.html is not None:
        report.to_html(args.html)
    if args.json:
        _print_json(report.to_dict())
    else:
        table = report.to_frame()
        stats = [c for c in ("psi", "js", "missing_rate", "unseen_rate", "out_of_range_rate")
                 if c in table.columns]
        columns = [c for c in ("role", "status", "rows") if c in table.columns] + stats
        _print(f"{bundle.name} {bundle.version}: drift of {report.rows} rows against "
               f"{report.reference_rows} training rows")
        _print(_table(["name", *columns],
                      [[name, *(row[c] for c in columns)] for name, row in table.iterrows()]))
        if args.html is not None:
            _print(f"HTML report written to {args.html}")
    if report.alerts:
        _error(f"drift alert on {len(report.alerts)} column(s) or score(s): "
               f"{', '.join(report.alerts)}")
        return EXIT_FAILED
    return EXIT_OK


def _read_data(path: Path) -> pd.DataFrame:
    import pandas as pd

    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        ".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet,
    }
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise _UsageError(f"cannot read {str(path)!r}: give a .csv or .parquet file")
    if not path.is_file():
        raise _UsageError(f"no data file at {str(path)!r}")
    try:
        return reader(path)
    except (ValueError, OSError, ImportError) as exc:
        raise _UsageError(f"cannot read {str(path)!r}: {type(exc).__name__}: "
                          f"{_one_line(exc)}") from None


# --------------------------------------------------------------------- demo


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        # Through sys.modules, so the demo can be replaced (tests) without importing it.
        _demo = importlib.import_module("safemodel.cli.demo")
    except ImportError as exc:
        raise SafeModelError(f"The demo is not available in this installation ({exc}).") \
            from None
    argv = [] if args.output is None else ["--output", args.output]
    code: int = _demo.main(argv)
    return code


# -------------------------------------------------------------------- store


def _cmd_store_list(args: argparse.Namespace) -> int:
    store = _store(args.root)
    rows: list[dict[str, Any]] = []
    for name in store.names():
        versions = store.versions(name)
        releases = [v for v in versions if not v.is_prerelease]
        rows.append({"name": name, "versions": [str(v) for v in versions],
                     "latest": str(releases[-1]) if releases else None,
                     "aliases": {k: str(v) for k, v in sorted(store.aliases(name).items())}})
    if args.json:
        _print_json(rows)
    elif not rows:
        _print(f"Store {args.root} holds no bundles.")
    else:
        _print(_table(["name", "versions", "latest release", "aliases"], [
            [r["name"], len(r["versions"]), r["latest"],
             ", ".join(f"{k}={v}" for k, v in r["aliases"].items()) or "-"] for r in rows
        ], indent=""))
    return EXIT_OK


def _cmd_store_versions(args: argparse.Namespace) -> int:
    from safemodel.io.archive import inspect

    store = _store(args.root)
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted(store.aliases(args.name).items()):
        by_version.setdefault(str(version), []).append(alias)
    rows = []
    for version in store.versions(args.name):
        info = inspect(store.path(args.name, version))
        rows.append({"version": str(version), "fingerprint": info.fingerprint,
                     "created": info.created, "aliases": by_version.get(str(version), []),
                     "path": info.path})
    if args.json:
        _print_json(rows)
    else:
        _print(_table(["version", "fingerprint", "created", "aliases"], [
            [r["version"], r["fingerprint"][:16], r["created"], ", ".join(r["aliases"]) or "-"]
            for r in rows
        ], indent=""))
    return EXIT_OK


def _cmd_store_get(args: argparse.Namespace) -> int:
    store = _store(args.root, **_load_options(args))
    bundle = store.get(args.name, args.version)
    path = store.path(args.name, bundle.version)
    result = {"name": bundle.name, "version": str(bundle.version),
              "fingerprint": bundle.fingerprint, "path": str(path), "verified": True}
    if args.json:
        _print_json(result)
    else:
        _print(_pairs([(k, v) for k, v in result.items()], indent=""))
    return EXIT_OK


def _cmd_store_put(args: argparse.Namespace) -> int:
    store = _store(args.root, must_exist=False)
    added = []
    for path in args.paths:
        if not path.is_file():
            raise _UsageError(f"no bundle file at {str(path)!r}")
        info = store.put(path)
        added.append({"name": info.name, "version": str(info.version),
                      "fingerprint": info.fingerprint, "path": info.path})
    if args.json:
        _print_json(added)
    else:
        for item in added:
            _print(f"{item['name']} {item['version']} stored ({item['fingerprint'][:16]})")
    return EXIT_OK


def _cmd_store_promote(args: argparse.Namespace) -> int:
    store = _store(args.root, **_load_options(args))
    try:
        entry = store.promote(args.name, args.version, alias=args.alias)
    except (GoldenMismatchError, IntegrityError, BundleFormatError) as exc:
        raise _failed(exc, args, refused=True) from exc
    if entry is None:
        target = store.aliases(args.name)[args.alias]
        result: dict[str, Any] = {"changed": False, "alias": args.alias, "to": str(target)}
        message = f"{args.name}: {args.alias!r} already points at {target}; nothing changed"
    else:
        result = {"changed": True, **entry.to_dict()}
        message = (f"{args.name}: {args.alias!r} now points at {entry.to_version} "
                   f"(was {entry.from_version or 'unset'}); verified fingerprint "
                   f"{entry.fingerprint[:16]}")
    if args.json:
        _print_json(result)
    else:
        _print(message)
    return EXIT_OK


def _cmd_store_rollback(args: argparse.Namespace) -> int:
    store = _store(args.root, **_load_options(args))
    try:
        entry = store.rollback(args.name, alias=args.alias)
    except (GoldenMismatchError, IntegrityError, BundleFormatError) as exc:
        raise _failed(exc, args, refused=True) from exc
    if args.json:
        _print_json({"changed": True, **entry.to_dict()})
    else:
        _print(f"{args.name}: {args.alias!r} rolled back from {entry.from_version} to "
               f"{entry.to_version}; verified fingerprint {entry.fingerprint[:16]}")
    return EXIT_OK


def _cmd_store_history(args: argparse.Namespace) -> int:
    store = _store(args.root)
    entries = store.history(args.name)
    if args.json:
        _print_json([e.to_dict() for e in entries])
    elif not entries:
        _print(f"{args.name}: no history yet")
    else:
        _print(_table(["time", "action", "alias", "from", "to", "fingerprint", "by"], [
            [e.time, e.action, e.alias, e.from_version, e.to_version, e.fingerprint[:16],
             "@".join(x for x in (e.user, e.host) if x) or None]
            for e in entries
        ], indent=""))
    return EXIT_OK
