"""``safemodel sidecar sign|verify``: OpenSSF model signing signatures beside a bundle.

Neither command unpickles anything::

    safemodel sidecar sign churn.safemodel --key key.pem      # writes churn.safemodel.sig
    model_signing verify key --signature churn.safemodel.sig --public_key key.pub churn.safemodel

    model_signing sign key --private_key key.pem --signature churn.safemodel.sig churn.safemodel
    safemodel sidecar verify churn.safemodel --trusted-key key.pub

``sign`` uses ``--key`` (an ECDSA P-256, P-384 or P-521 private key in PEM), else your
own safemodel key when it is an ECDSA key. ``verify`` trusts your own key, the trust
store, ``$SAFEMODEL_TRUSTED_KEYS`` and each ``--trusted-key``; exit 1 when the
signature is missing, untrusted, or the file was modified after signing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from safemodel.cli._common import Failed, UsageError, common_options, failed
from safemodel.cli._output import say, say_json
from safemodel.errors import IntegrityError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``sidecar`` command group (``sign``, ``verify``) to the CLI's subparsers.

    Parameters
    ----------
    subparsers : argparse subparsers action
        What ``ArgumentParser.add_subparsers`` returned for the ``safemodel`` parser.
    """
    group = subparsers.add_parser(
        "sidecar", parents=[common_options()],
        help="OpenSSF model signing signatures beside a bundle (<bundle>.sig)",
        description="Write or check a signature in the OpenSSF model signing format "
                    "(key mode), which `model_signing verify key` and `model_signing "
                    "sign key` also read and write. Nothing is unpickled.",
    )
    actions = group.add_subparsers(dest="sidecar_action", required=True, metavar="ACTION")
    sign = actions.add_parser("sign", parents=[common_options()],
                              help="write <bundle>.sig with an ECDSA key")
    sign.add_argument("bundle", metavar="PATH", type=Path)
    sign.add_argument("--key", metavar="KEY.pem", type=Path,
                      help="ECDSA private key (default: your safemodel key, if ECDSA)")
    sign.add_argument("--signature", metavar="SIG", type=Path,
                      help="where to write the signature (default: PATH.sig)")
    sign.add_argument("--certificate", metavar="CERT.pem", type=Path,
                      help="certificate mode: the key's certificate, then any "
                           "intermediates (PEM; `model_signing verify certificate` reads it)")
    sign.set_defaults(run=_sign)
    verify = actions.add_parser("verify", parents=[common_options()],
                                help="check <bundle>.sig against trusted keys")
    verify.add_argument("bundle", metavar="PATH", type=Path)
    verify.add_argument("--signature", metavar="SIG", type=Path,
                        help="the signature file (default: PATH.sig)")
    verify.add_argument("--trusted-key", metavar="KEY.pem", type=Path, action="append",
                        default=[], help="also trust this public key (repeatable)")
    verify.set_defaults(run=_verify)


def _sign(args: argparse.Namespace) -> int:
    from safemodel.io.keys import own_key
    from safemodel.io.model_signing import write_sidecar

    if args.key is not None:
        try:
            key: Any = args.key.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read --key {str(args.key)!r}: {exc.strerror}") from None
    else:
        key = own_key()
        if key is None:
            raise UsageError("no --key given and you have no safemodel key yet; pass "
                             "--key KEY.pem (an ECDSA P-256 private key)")
    chain = None
    if args.certificate is not None:
        from cryptography import x509

        try:
            chain = x509.load_pem_x509_certificates(args.certificate.read_bytes())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read --certificate {str(args.certificate)!r} as PEM "
                             f"certificates: {exc}") from None
    out = write_sidecar(args.bundle, key, sig_path=args.signature, certificates=chain)
    if args.json:
        say_json({"bundle": str(args.bundle), "signature": str(out)})
    else:
        say(f"wrote {out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from safemodel.io.model_signing import sidecar_path, verify_sidecar

    sig = args.signature or sidecar_path(args.bundle)
    if not sig.is_file():
        raise Failed(f"{args.bundle}: no signature file {str(sig)!r}", "MissingSignature",
                     {"bundle": str(args.bundle), "signature": str(sig)})
    try:
        signer = verify_sidecar(args.bundle, sig, args.trusted_key)
    except IntegrityError as exc:  # untrusted, forged, or modified after signing
        raise failed(exc, args, prefix=f"{args.bundle}: ", bundle=str(args.bundle),
                     signature=str(sig)) from None
    if args.json:
        say_json({"bundle": str(args.bundle), "signature": str(sig), "ok": True,
                  "key_id": signer.key_id, "key_type": signer.key_type,
                  "label": signer.label, "source": signer.source})
    else:
        say(f"OK: {args.bundle} signed by {signer.short_id} ({signer.label}, "
            f"{signer.key_type}, from {signer.source})")
    return 0
