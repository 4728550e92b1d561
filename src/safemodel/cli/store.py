"""``safemodel store ROOT ACTION``: list, add, promote and roll back bundles in a store."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safemodel.cli._common import (
    EXIT_OK,
    Subparsers,
    UsageError,
    common_options,
    failed,
    load_options,
    loading_options,
    open_store,
    sidecar_options,
)
from safemodel.cli._output import pairs, say, say_json, table
from safemodel.errors import (
    BundleFormatError,
    GoldenMismatchError,
    IncompatibleEnvironmentError,
    IntegrityError,
    StoreError,
)

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    """Add ``store`` and its actions to the command line."""
    common, loading, sidecar = common_options(), loading_options(), sidecar_options()
    p = subparsers.add_parser("store", parents=[common],
                              help="list, add, promote and roll back bundles in a store")
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
    a = actions.add_parser("put", parents=[common, sidecar],
                           help="add bundle files as new versions")
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


def _cmd_store_list(args: argparse.Namespace) -> int:
    store = open_store(args.root)
    rows: list[dict[str, Any]] = []
    for name in store.names():
        versions = store.versions(name)
        releases = [v for v in versions if not v.is_prerelease]
        rows.append({"name": name, "versions": [str(v) for v in versions],
                     "latest": str(releases[-1]) if releases else None,
                     "aliases": {k: str(v) for k, v in sorted(store.aliases(name).items())}})
    if args.json:
        say_json(rows)
    elif not rows:
        say(f"Store {args.root} holds no bundles.")
    else:
        say(table(["name", "versions", "latest release", "aliases"], [
            [r["name"], len(r["versions"]), r["latest"],
             ", ".join(f"{k}={v}" for k, v in r["aliases"].items()) or "-"] for r in rows
        ], indent=""))
    return EXIT_OK


def _cmd_store_versions(args: argparse.Namespace) -> int:
    from safemodel.io.archive import inspect

    store = open_store(args.root)
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
        say_json(rows)
    else:
        say(table(["version", "fingerprint", "created", "aliases"], [
            [r["version"], r["fingerprint"][:16], r["created"], ", ".join(r["aliases"]) or "-"]
            for r in rows
        ], indent=""))
    return EXIT_OK


@contextlib.contextmanager
def _refusals(args: argparse.Namespace) -> Iterator[None]:
    """A promotion or rollback refused by a check is a failed check (exit 1): the
    check's own errors, and a store error met while verifying the target."""
    try:
        yield
    except (GoldenMismatchError, IntegrityError, BundleFormatError,
            IncompatibleEnvironmentError) as exc:
        raise failed(exc, args, refused=True) from exc
    except StoreError as exc:
        if not exc.refused:  # a lookup that found nothing: a usage error (exit 2)
            raise
        raise failed(exc, args, refused=True) from exc


def _cmd_store_get(args: argparse.Namespace) -> int:
    store = open_store(args.root, **load_options(args))
    try:
        bundle = store.get(args.name, args.version)
    except (GoldenMismatchError, IntegrityError, BundleFormatError,
            IncompatibleEnvironmentError) as exc:  # a failed check: exit 1, as verify
        raise failed(exc, args, "verification failed: ", name=args.name) from exc
    path = store.path(args.name, bundle.version)
    result = {"name": bundle.name, "version": str(bundle.version),
              "fingerprint": bundle.fingerprint, "path": str(path), "verified": True}
    if args.json:
        say_json(result)
    else:
        say(pairs([(k, v) for k, v in result.items()], indent=""))
    return EXIT_OK


def _cmd_store_put(args: argparse.Namespace) -> int:
    store = open_store(args.root, must_exist=False, sidecar=args.sidecar)
    added = []
    for path in args.paths:
        if not path.is_file():
            raise UsageError(f"no bundle file at {str(path)!r}")
        info = store.put(path)
        added.append({"name": info.name, "version": str(info.version),
                      "fingerprint": info.fingerprint, "path": info.path})
    if args.json:
        say_json(added)
    else:
        for item in added:
            say(f"{item['name']} {item['version']} stored ({item['fingerprint'][:16]})")
    return EXIT_OK


def _cmd_store_promote(args: argparse.Namespace) -> int:
    store = open_store(args.root, **load_options(args))
    with _refusals(args):
        entry = store.promote(args.name, args.version, alias=args.alias)
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
        say_json(result)
    else:
        say(message)
    return EXIT_OK


def _cmd_store_rollback(args: argparse.Namespace) -> int:
    store = open_store(args.root, **load_options(args))
    with _refusals(args):
        entry = store.rollback(args.name, alias=args.alias)
    if args.json:
        say_json({"changed": True, **entry.to_dict()})
    else:
        say(f"{args.name}: {args.alias!r} rolled back from {entry.from_version} to "
            f"{entry.to_version}; verified fingerprint {entry.fingerprint[:16]}")
    return EXIT_OK


def _cmd_store_history(args: argparse.Namespace) -> int:
    store = open_store(args.root)
    entries = store.history(args.name)
    if args.json:
        say_json([e.to_dict() for e in entries])
    elif not entries:
        say(f"{args.name}: no history yet")
    else:
        say(table(["time", "action", "alias", "from", "to", "fingerprint", "by"], [
            [e.time, e.action, e.alias, e.from_version, e.to_version, e.fingerprint[:16],
             "@".join(x for x in (e.user, e.host) if x) or None]
            for e in entries
        ], indent=""))
    return EXIT_OK
