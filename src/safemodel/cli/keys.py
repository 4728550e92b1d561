"""``safemodel keys`` and ``safemodel trust``: your signing key, and the keys you trust.

::

    safemodel keys show                    your public key (PEM) and key id; created if missing
    safemodel keys create [--type TYPE]    create your key: ed25519 (default) or ecdsa-p256
    safemodel trust add KEY.pem [--label]  trust bundles signed by that key
    safemodel trust list                   the trust store
    safemodel trust remove ID              by key id, or a unique prefix of it
    safemodel trust ca add CA.pem [--identity NAME]...   model signing certificate mode
    safemodel trust ca list | remove ID
    safemodel trust sigstore add --identity ID --issuer URL --trusted-root FILE
                                 [--max-age-days N]      Sigstore keyless (safemodel[sigstore])
    safemodel trust sigstore list | remove ID

Every save signs with your key; every load unpickles only what your key, a trusted
key, or an explicit key signed. Give ``keys show``'s output to the machines that load
your bundles; they run ``safemodel trust add`` once (see ``docs/security.md``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safemodel.cli._common import EXIT_OK, Subparsers, common_options
from safemodel.cli._output import say, say_json, table

__all__ = ["register"]


def register(subparsers: Subparsers) -> None:
    """Add ``keys`` and ``trust`` to the command line."""
    common = common_options()
    p = subparsers.add_parser("keys", parents=[common], help="your signing key")
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    a = actions.add_parser("show", parents=[common],
                           help="print your public key and key id (created if missing)")
    a.set_defaults(run=_cmd_keys_show)
    a = actions.add_parser("create", parents=[common],
                           help="create your signing key (ecdsa-p256 for model signing)")
    a.add_argument("--type", dest="key_type", choices=["ed25519", "ecdsa-p256"],
                   default="ed25519", help="the key type (default: ed25519)")
    a.set_defaults(run=_cmd_keys_create)

    p = subparsers.add_parser("trust", parents=[common],
                              help="the public keys whose bundles you load")
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    a = actions.add_parser("add", parents=[common], help="trust bundles signed by KEY.pem")
    a.add_argument("key", metavar="KEY.pem", type=Path, help="a public key file (PEM)")
    a.add_argument("--label", help="a name for people (default: the file name)")
    a.set_defaults(run=_cmd_trust_add)
    _register_list_remove(actions, common, "key", "key_id", "key id", _cmd_trust_list,
                          _cmd_trust_remove)
    _register_ca(actions, common)
    _register_sigstore(actions, common)


def _register_list_remove(actions: Any, common: argparse.ArgumentParser, what: str,
                          dest: str, id_name: str, run_list: Callable[..., int],
                          run_remove: Callable[..., int]) -> None:
    """``list`` and ``remove ID`` of one trust store (keys, CAs, Sigstore signers)."""
    a = actions.add_parser("list", parents=[common], help=f"the trusted {what}s")
    a.set_defaults(run=run_list)
    a = actions.add_parser("remove", parents=[common], help=f"stop trusting a {what}")
    a.add_argument(dest, metavar="ID", help=f"the {id_name}, or a unique prefix of it")
    a.set_defaults(run=run_remove)


def _register_ca(actions: Any, common: argparse.ArgumentParser) -> None:
    group = actions.add_parser("ca", parents=[common],
                               help="CAs trusted for model signing certificate signatures")
    ca = group.add_subparsers(title="actions", metavar="ACTION", required=True)
    a = ca.add_parser("add", parents=[common], help="trust a CA certificate (PEM)")
    a.add_argument("certificate", metavar="CA.pem", type=Path)
    a.add_argument("--identity", action="append", default=[],
                   help="accept only leaves naming this (SAN or CN); repeatable")
    a.add_argument("--label", help="a name for people (default: the CA's subject)")
    a.set_defaults(run=_cmd_ca_add)
    _register_list_remove(ca, common, "CA", "ca_id", "CA id", _cmd_ca_list, _cmd_ca_remove)


def _register_sigstore(actions: Any, common: argparse.ArgumentParser) -> None:
    group = actions.add_parser("sigstore", parents=[common],
                               help="Sigstore (keyless) signers, checked offline")
    sg = group.add_subparsers(title="actions", metavar="ACTION", required=True)
    a = sg.add_parser("add", parents=[common], help="trust a Sigstore identity and issuer")
    a.add_argument("--identity", required=True, help="the certificate's SAN, exactly")
    a.add_argument("--issuer", required=True, help="the OIDC issuer URL, exactly")
    a.add_argument("--trusted-root", required=True, type=Path,
                   help="the Sigstore instance's trusted_root.json (copied)")
    a.add_argument("--max-age-days", type=int, default=90,
                   help="refuse the root when older (default: 90); add again to refresh")
    a.set_defaults(run=_cmd_sigstore_add)
    _register_list_remove(sg, common, "Sigstore signer", "entry_id", "entry id",
                          _cmd_sigstore_list, _cmd_sigstore_remove)


def _cmd_keys_create(args: argparse.Namespace) -> int:
    from safemodel.errors import SigningKeyError
    from safemodel.io.keys import PRIVATE_KEY_FILE, own_key, safemodel_home
    from safemodel.io.signing import key_type

    existing = own_key()
    if existing is not None and key_type(existing) != args.key_type:
        path = safemodel_home() / PRIVATE_KEY_FILE
        raise SigningKeyError(
            f"You already have a {key_type(existing)} key ({str(path)!r}); it is kept. To "
            f"sign with a new {args.key_type} key, move that file aside (bundles it signed "
            "stay loadable where its public key is trusted: `safemodel trust add`), then "
            "run this again.")
    return _cmd_keys_show(args)


def _cmd_keys_show(args: argparse.Namespace) -> int:
    from safemodel.io.keys import default_signing_key, safemodel_home
    from safemodel.io.signing import key_id, key_type, public_pem

    key = default_signing_key(key_type=getattr(args, "key_type", "ed25519"))
    pem, full_id = public_pem(key), key_id(key)
    if args.json:
        say_json({"key_id": full_id, "key_type": key_type(key), "public_key": pem,
                  "home": str(safemodel_home())})
    else:
        say(pem.rstrip("\n"))
        say(f"key id: {full_id}")
        say(f"(private key in {safemodel_home()}; give the lines above to whoever loads "
            "your bundles: `safemodel trust add KEY.pem`)")
    return EXIT_OK


def _answer(args: argparse.Namespace, record: dict[str, Any], text: str) -> int:
    """What an add or remove did: ``record`` with --json, else ``text``."""
    if args.json:
        say_json(record)
    else:
        say(text)
    return EXIT_OK


def _listing(args: argparse.Namespace, records: list[dict[str, Any]], empty: str,
             headers: list[str], rows: list[list[Any]]) -> int:
    """A trust store's entries: ``records`` with --json, else a table (``empty`` if none)."""
    if args.json:
        say_json(records)
    elif not records:
        say(empty)
    else:
        say(table(headers, rows))
    return EXIT_OK


def _cmd_trust_add(args: argparse.Namespace) -> int:
    from safemodel.io.keys import trust_add

    entry = trust_add(args.key, label=args.label)
    return _answer(args, {"key_id": entry.key_id, "label": entry.label},
                   f"trusted {entry.short_id} ({entry.label}): bundles it signs now load here")


def _cmd_trust_list(args: argparse.Namespace) -> int:
    from safemodel.io.keys import trust_list

    entries = trust_list()
    return _listing(args, [{"key_id": e.key_id, "label": e.label, "key_type": e.key_type}
                           for e in entries],
                    "no trusted keys (your own key is always trusted); add one with "
                    "`safemodel trust add KEY.pem`",
                    ["key id", "label", "type"], [[e.key_id, e.label, e.key_type]
                                                  for e in entries])


def _cmd_trust_remove(args: argparse.Namespace) -> int:
    from safemodel.io.keys import trust_remove

    entry = trust_remove(args.key_id)
    return _answer(args, {"key_id": entry.key_id, "label": entry.label, "removed": True},
                   f"removed {entry.short_id} ({entry.label}) from the trust store")


def _cmd_ca_add(args: argparse.Namespace) -> int:
    from safemodel.io.x509_trust import ca_add

    entry = ca_add(args.certificate, identities=args.identity, label=args.label)
    who = ", ".join(entry.identities) or "any certificate it issued"
    return _answer(args, {"ca_id": entry.ca_id, "label": entry.label,
                          "identities": list(entry.identities)},
                   f"trusted CA {entry.ca_id[:16]} ({entry.label}) for {who}")


def _cmd_ca_list(args: argparse.Namespace) -> int:
    from safemodel.io.x509_trust import ca_list

    entries = ca_list()
    return _listing(args, [{"ca_id": e.ca_id, "label": e.label,
                            "identities": list(e.identities)} for e in entries],
                    "no trusted CAs; add one with `safemodel trust ca add CA.pem`",
                    ["CA id", "label", "identities"],
                    [[e.ca_id[:16], e.label, ", ".join(e.identities) or "any"]
                     for e in entries])


def _cmd_ca_remove(args: argparse.Namespace) -> int:
    from safemodel.io.x509_trust import ca_remove

    entry = ca_remove(args.ca_id)
    return _answer(args, {"ca_id": entry.ca_id, "removed": True},
                   f"removed CA {entry.ca_id[:16]} ({entry.label})")


def _cmd_sigstore_add(args: argparse.Namespace) -> int:
    from safemodel.io.sigstore_trust import sigstore_add

    entry = sigstore_add(args.identity, args.issuer, args.trusted_root,
                         max_age_days=args.max_age_days)
    return _answer(args, {"entry_id": entry.entry_id, "identity": entry.identity,
                          "issuer": entry.issuer, "max_age_days": entry.max_age_days},
                   f"trusted {entry.identity} via {entry.issuer} (trust root pinned now; "
                   f"refused after {entry.max_age_days} days: add it again to refresh)")


def _cmd_sigstore_list(args: argparse.Namespace) -> int:
    from safemodel.io.sigstore_trust import sigstore_list

    entries = sigstore_list()
    return _listing(args, [{"entry_id": e.entry_id, "identity": e.identity,
                            "issuer": e.issuer, "added": e.added.isoformat(),
                            "max_age_days": e.max_age_days} for e in entries],
                    "no trusted Sigstore signers; add one with `safemodel trust sigstore add`",
                    ["id", "identity", "issuer", "root pinned", "max age (days)"],
                    [[e.entry_id[:16], e.identity, e.issuer, f"{e.added:%Y-%m-%d}",
                      str(e.max_age_days)] for e in entries])


def _cmd_sigstore_remove(args: argparse.Namespace) -> int:
    from safemodel.io.sigstore_trust import sigstore_remove

    entry = sigstore_remove(args.entry_id)
    return _answer(args, {"entry_id": entry.entry_id, "removed": True},
                   f"removed {entry.identity} via {entry.issuer}")
