"""``safemodel keys`` and ``safemodel trust``: your signing key, and the keys you trust.

::

    safemodel keys show                    your public key (PEM) and key id; created if missing
    safemodel keys create [--type TYPE]    create your key: ed25519 (default) or ecdsa-p256
    safemodel trust add KEY.pem [--label]  trust bundles signed by that key
    safemodel trust list                   the trust store
    safemodel trust remove ID              by key id, or a unique prefix of it

Every save signs with your key; every load unpickles only what your key, a trusted
key, or an explicit key signed. Give ``keys show``'s output to the machines that load
your bundles; they run ``safemodel trust add`` once (see ``docs/security.md``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
    a = actions.add_parser("list", parents=[common], help="the trusted keys")
    a.set_defaults(run=_cmd_trust_list)
    a = actions.add_parser("remove", parents=[common], help="stop trusting a key")
    a.add_argument("key_id", metavar="ID", help="the key id, or a unique prefix of it")
    a.set_defaults(run=_cmd_trust_remove)


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


def _cmd_trust_add(args: argparse.Namespace) -> int:
    from safemodel.io.keys import trust_add

    entry = trust_add(args.key, label=args.label)
    if args.json:
        say_json({"key_id": entry.key_id, "label": entry.label})
    else:
        say(f"trusted {entry.short_id} ({entry.label}): bundles it signs now load here")
    return EXIT_OK


def _cmd_trust_list(args: argparse.Namespace) -> int:
    from safemodel.io.keys import trust_list

    entries = trust_list()
    if args.json:
        say_json([{"key_id": e.key_id, "label": e.label, "key_type": e.key_type}
                  for e in entries])
    elif not entries:
        say("no trusted keys (your own key is always trusted); add one with "
            "`safemodel trust add KEY.pem`")
    else:
        say(table(["key id", "label", "type"], [[e.key_id, e.label, e.key_type]
                                                for e in entries]))
    return EXIT_OK


def _cmd_trust_remove(args: argparse.Namespace) -> int:
    from safemodel.io.keys import trust_remove

    entry = trust_remove(args.key_id)
    if args.json:
        say_json({"key_id": entry.key_id, "label": entry.label, "removed": True})
    else:
        say(f"removed {entry.short_id} ({entry.label}) from the trust store")
    return EXIT_OK
