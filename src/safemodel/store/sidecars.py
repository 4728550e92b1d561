"""Model signing sidecars beside a store's bundles (``BundleStore(root, sidecar=True)``).

A store made with ``sidecar=True`` keeps ``<version>.safemodel.sig`` (an OpenSSF model
signing signature, :mod:`safemodel.io.model_signing`) beside every bundle it holds,
and every load from it (``get``, ``load_all``, ``promote``, ``rollback``) requires
that signature to verify, with a trusted ECDSA key, over the exact bytes about to be
unpickled, on top of the bundle's own signature. So a tool that checks only model
signing (``model_signing verify key``) and safemodel agree on what the store holds.

How a bundle gets its sidecar on ``put``:

- a :class:`~safemodel.core.bundle.ModelBundle` is saved with ``sidecar=True``, signed by
  the put's key (the store's ``signing_key``, else your own, which must be ECDSA);
- a file that has ``<file>.sig`` beside it keeps it, after it verified against the
  file with a trusted key (a sidecar not matching the file is refused: nothing is
  added);
- a file without one gets one signed by your key *only if* its own signature is by
  a trusted key. Signing an untrusted file would turn "somebody put it" into "a key I
  trust vouches for it"; such a file is refused with a message saying how to sign it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any, Final

from safemodel.errors import IntegrityError, StoreError, UntrustedBundleError
from safemodel.io.archive import read_file, signed_parts
from safemodel.io.keys import trusted_keys
from safemodel.io.model_signing import (
    read_sidecar_file,
    require_sidecar,
    sidecar_path,
    verify_sidecar_bytes,
    write_sidecar_digest,
)
from safemodel.io.trust import decide_trust, signing_key_for_save

__all__ = ["adopt", "check", "discard", "install"]

_SIGN_ADVICE: Final = (
    "Sign it first with a key this machine trusts (`safemodel sidecar sign FILE --key "
    "KEY.pem`, which model signing also accepts), or trust its signer "
    "(`safemodel trust add KEY.pem`), then put it again."
)


def check(path: Path, data: bytes, content: bytes | None,
          options: dict[str, Any]) -> None:
    """Check the sidecar of the stored ``path``, as read for this load, over ``data``.

    Parameters
    ----------
    path : Path
        The stored bundle file.
    data : bytes
        Its bytes as read for this load (the bytes later unpickled).
    content : bytes or None
        The content of ``<path>.sig`` as the caller read it (``None``: no such file).
        The caller reads it once and keys what it caches by these very bytes.
    options : dict
        The store's load options (``trusted_keys`` is used).

    Raises
    ------
    IntegrityError, UntrustedBundleError
        As :func:`~safemodel.io.model_signing.require_sidecar`.
    """
    require_sidecar(data, content, sidecar_path(path),
                    trusted_keys(options.get("trusted_keys")),
                    why="The store keeps model signing signatures (sidecar=True)",
                    fix="put the bundle again with its signature, or open the store "
                        "without sidecar=True")


def adopt(source: Any, tmp: Path, signing_key: Any, options: dict[str, Any]) -> None:
    """Give the incoming copy ``tmp`` of the file ``source`` its sidecar ``tmp.sig``."""
    data = read_file(tmp, "put")
    given = read_sidecar_file(sidecar_path(os.fspath(source)))
    if given is not None:
        try:
            verify_sidecar_bytes(data, given, trusted_keys(options.get("trusted_keys")),
                                 source=str(sidecar_path(os.fspath(source))))
        except UntrustedBundleError as exc:
            raise UntrustedBundleError(
                f"Refused to put {os.fspath(source)!r}: {exc}", signer=exc.signer,
                member=exc.member, expected=exc.expected, found=exc.found) from None
        except IntegrityError as exc:
            raise IntegrityError(
                f"Refused to put {os.fspath(source)!r}: {exc}", member=exc.member,
                expected=exc.expected, found=exc.found) from None
        sidecar_path(tmp).write_bytes(given)
        return
    manifest, signature = signed_parts(data, str(source))
    decision = decide_trust(manifest, signature, trust=True, source=str(source),
                            signing_key=options.get("signing_key"),
                            trusted_keys=options.get("trusted_keys"))
    if not decision.trusted:
        raise StoreError(
            f"Refused to put {os.fspath(source)!r}: the store keeps model signing "
            f"signatures, the file has none beside it, and its own signature is "
            f"{decision.signer}, not a trusted key's, so this store will not vouch for it. "
            + _SIGN_ADVICE)
    write_sidecar_digest(tmp, hashlib.sha256(data).hexdigest(),
                         signing_key_for_save(signing_key))


def install(tmp: Path, final: Path) -> None:
    """Move ``tmp.sig`` beside ``final`` (before the bundle moves, so they appear together)."""
    incoming = sidecar_path(tmp)
    if incoming.exists():
        os.replace(incoming, sidecar_path(final))


def discard(tmp: Path) -> None:
    """Remove an incoming sidecar left by a failed put."""
    with contextlib.suppress(FileNotFoundError):
        sidecar_path(tmp).unlink()
