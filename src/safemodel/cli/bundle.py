"""Commands about one or two bundles: ``inspect``, ``verify``, ``diff`` and ``drift``.

Each takes bundle files, or with ``--store ROOT`` names of the form
``NAME[@VERSION|SPECIFIER|ALIAS]``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safemodel._values import flatten
from safemodel.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    Subparsers,
    UsageError,
    common_options,
    failed,
    load_bundle,
    loading_options,
    locate,
    located_options,
    sidecar_options,
)
from safemodel.cli._output import cell, error, listing, one_line, pairs, say, say_json, table
from safemodel.errors import GoldenMismatchError, IncompatibleEnvironmentError, IntegrityError

if TYPE_CHECKING:
    import pandas as pd

    from safemodel.io.manifest import BundleInfo

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    """Add ``inspect``, ``verify``, ``diff`` and ``drift`` to the command line."""
    common, loading, located = common_options(), loading_options(), located_options()

    p = subparsers.add_parser("inspect", parents=[common, located, sidecar_options()],
                              help="show what a bundle holds (never unpickles)")
    p.add_argument("bundle", metavar="PATH")
    p.set_defaults(run=_cmd_inspect)

    p = subparsers.add_parser("verify", parents=[common, loading, located],
                              help="check integrity and golden outputs in this environment")
    p.add_argument("bundle", metavar="PATH")
    p.set_defaults(run=_cmd_verify)

    p = subparsers.add_parser("diff", parents=[common, loading, located],
                              help="what changed between two bundles")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.set_defaults(run=_cmd_diff)

    p = subparsers.add_parser("drift", parents=[common, loading, located],
                              help="compare data with the bundle's training profile")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("data", metavar="DATA", type=Path, help="a .csv or .parquet file")
    p.add_argument("--html", metavar="OUT", type=Path, help="also write an HTML report")
    p.set_defaults(run=_cmd_drift)


# ------------------------------------------------------------------ inspect

def _cmd_inspect(args: argparse.Namespace) -> int:
    from safemodel.io.archive import inspect, inspect_bytes, read_file

    path = locate(args, args.bundle)
    if args.sidecar:  # one read: the bytes described are the bytes the .sig is checked over
        data = read_file(path, "inspect")
        info, sidecar = inspect_bytes(data, path), _sidecar_check(path, data)
    else:
        info, sidecar = inspect(path), None
    if args.json:
        say_json(info.to_dict() if sidecar is None else {**info.to_dict(), "sidecar": sidecar})
    else:
        say(_describe_info(info, sidecar))
    if sidecar is not None and not sidecar["ok"]:  # described all the same, as drift does
        error(f"{path}: {sidecar['detail']}")
        return EXIT_FAILED
    return EXIT_OK


def _sidecar_check(path: Path, data: bytes) -> dict[str, Any]:
    """``<path>.sig`` checked over ``data`` (the file's bytes) with the keys trusted
    here; never unpickles."""
    from safemodel.io.keys import trusted_keys
    from safemodel.io.model_signing import read_sidecar_file, require_sidecar, sidecar_path

    sig = sidecar_path(path)
    try:
        signer = require_sidecar(data, read_sidecar_file(sig), sig,
                                 trusted_keys(), why="--sidecar requires a model signing "
                                 "signature", fix="sign the file (`safemodel sidecar sign "
                                 "PATH`), or inspect it without --sidecar")
    except IntegrityError as exc:  # missing, forged, of other bytes, or an untrusted key
        return {"path": str(sig), "ok": False, "error": type(exc).__name__,
                "detail": one_line(exc)}
    return {"path": str(sig), "ok": True, "key_id": signer.key_id,
            "key_type": signer.key_type, "label": signer.label, "source": signer.source,
            "signer": f"{signer.short_id} ({signer.label}, {signer.key_type}, from "
                      f"{signer.source})"}


def _describe_info(info: BundleInfo, sidecar: Mapping[str, Any] | None = None) -> str:
    rows: list[tuple[str, Any]] = [
        ("path", info.path),
        ("fingerprint", info.fingerprint),
        ("format", info.format_version),
        ("created", info.created),
        ("methods", ", ".join(info.methods)),
        ("signed", info.signed),
        ("signer", info.signer),
        ("trusted here", f"{info.trusted} ({info.trust_reason})" if info.trust_reason
         else info.trusted),
    ]
    if sidecar is not None:
        rows.append(("sidecar", f"{sidecar['path']}: " + (
            f"verified, signed by {sidecar['signer']}" if sidecar["ok"]
            else f"FAILED ({sidecar['error']})")))
    parts = [f"{info.name} {info.version}", pairs(rows)]
    parts += ["", "Environment (at build time)",
              pairs([(k, v) for k, v in info.environment.items()])]
    columns = list((info.contract or {}).get("columns", []))
    parts += ["", f"Contract: {len(columns)} columns", table(
        ["column", "type", "kind", "nullable", "allowed values / observed range"],
        [[c.get("name"), c.get("dtype"), c.get("kind"), bool(c.get("nullable")), _allowed(c)]
         for c in columns],
    )]
    parts += ["", "Policy", pairs(list(flatten(info.policy or {}).items()))]
    golden = dict(info.golden or {})
    rejected = golden.get("rejected") or {}
    parts += ["", "Golden outputs", pairs([
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
        return listing(list(column["categories"]))
    if column.get("minimum") is not None:
        return f"{cell(column['minimum'])} .. {cell(column.get('maximum'))}"
    return ""


# ------------------------------------------------------------------- verify


def _cmd_verify(args: argparse.Namespace) -> int:
    from safemodel.io.archive import inspect
    from safemodel.io.model_signing import sidecar_path

    try:
        path, bundle = load_bundle(args, args.bundle)
    except (GoldenMismatchError, IntegrityError, IncompatibleEnvironmentError) as exc:
        raise failed(exc, args, "verification failed: ", bundle=args.bundle) from exc
    # load() verified already; this second, cheap run gives the report to show.
    verification = bundle.verify()
    info = inspect(path)
    # Loaded with --sidecar, the .sig beside the file verified over the bytes unpickled.
    sidecar = str(sidecar_path(path)) if args.sidecar else None
    if args.json:
        say_json({**verification.to_dict(), "fingerprint": bundle.fingerprint,
                  "signer": info.signer, "trusted": info.trusted, "sidecar": sidecar})
    else:
        golden = bundle.golden
        say(f"{bundle.name} {bundle.version}: OK - integrity and golden outputs hold "
            f"({len(golden.inputs)} golden rows; {', '.join(sorted(golden.outputs))})")
        say(f"  signer: {info.trust_reason}")
        if sidecar is not None:
            say(f"  sidecar: {sidecar} verified")
        for package, (before, now) in sorted(verification.environment_diff.items()):
            say(f"  {package}: built with {before or 'absent'}, running {now or 'absent'}")
    return EXIT_OK


# --------------------------------------------------------------------- diff


def _cmd_diff(args: argparse.Namespace) -> int:
    from safemodel.core.diff import diff

    (path_a, a), (path_b, b) = load_bundle(args, args.a), load_bundle(args, args.b)
    found = diff(a, b)
    found = dataclasses.replace(found, a={**found.a, "path": str(path_a)},
                                b={**found.b, "path": str(path_b)})
    if args.json:
        say_json(found.to_dict())
    else:
        say(found.describe())
    return EXIT_OK


# -------------------------------------------------------------------- drift


def _cmd_drift(args: argparse.Namespace) -> int:
    frame = _read_data(args.data)
    _, bundle = load_bundle(args, args.bundle)
    report = bundle.drift(frame)
    if args.html is not None:
        report.to_html(args.html)
    if args.json:
        say_json(report.to_dict())
    else:
        frame = report.to_frame()
        stats = [c for c in ("psi", "js", "missing_rate", "unseen_rate", "out_of_range_rate")
                 if c in frame.columns]
        columns = [c for c in ("role", "status", "rows") if c in frame.columns] + stats
        say(f"{bundle.name} {bundle.version}: drift of {report.rows} rows against "
            f"{report.reference_rows} training rows")
        say(table(["name", *columns],
                  [[name, *(row[c] for c in columns)] for name, row in frame.iterrows()]))
        if args.html is not None:
            say(f"HTML report written to {args.html}")
    if report.alerts:
        error(f"drift alert on {len(report.alerts)} column(s) or score(s): "
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
        raise UsageError(f"cannot read {str(path)!r}: give a .csv or .parquet file")
    if not path.is_file():
        raise UsageError(f"no data file at {str(path)!r}")
    try:
        return reader(path)
    except (ValueError, OSError, ImportError) as exc:
        raise UsageError(f"cannot read {str(path)!r}: {type(exc).__name__}: "
                         f"{one_line(exc)}") from None
