"""Sigstore (keyless) signers you trust, for model signing's default ``sign sigstore`` mode.

A keyless signature holds a short-lived Fulcio certificate naming the signer's
identity (an e-mail or a workflow URI) and the OpenID Connect issuer that vouched for
it, plus a Rekor transparency-log entry proving when it was signed. It is verified
offline against a pinned ``trusted_root.json`` (Fulcio CAs, Rekor and CT log keys):

    safemodel trust sigstore add --identity alice@example.com \\
        --issuer https://accounts.google.com --trusted-root trusted_root.json

records, in ``trusted-sigstore/<id>.json`` of the safemodel home folder, the identity,
the issuer, a copy of the trust root and when it was added. A signature is accepted
only if sigstore-python's verifier (``safemodel[sigstore]``: ``sigstore>=4.5,<5``)
verifies it against that root (certificate chain at the log's time, log inclusion
proof and signed timestamp, DSSE signature) *and* its certificate names exactly that
identity and issuer. A trust root older than its ``max_age_days`` is refused, with the
command that refreshes it, because the root is how key rotations and revocations of
the Sigstore instance reach an offline verifier.

``sigstore`` is imported only when a keyless signature is verified or registered;
``import safemodel`` never imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from safemodel.errors import IntegrityError, InvalidArgument, SafeModelError, UntrustedBundleError
from safemodel.io.keys import TrustedKey, safemodel_home
from safemodel.io.signing import key_id, key_type
from safemodel.io.trust_folder import TrustFolder

__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "SIGSTORE_STORE_FOLDER",
    "TrustedIdentity",
    "sigstore_add",
    "sigstore_list",
    "sigstore_remove",
    "verify_keyless",
]

#: The folder of the home folder holding trusted Sigstore identities and their roots.
SIGSTORE_STORE_FOLDER: Final = "trusted-sigstore"
#: How old a pinned trust root may be before loads refuse it (days).
DEFAULT_MAX_AGE_DAYS: Final = 90
_REFRESH: Final = (
    "Refresh it: get the current trusted_root.json of your Sigstore instance (for the "
    "public one, online: `python -m sigstore plumbing update-trust-root` updates "
    "sigstore's TUF copy, under ~/.cache/sigstore-python/tuf/; or your organisation's "
    "mirror) and run `safemodel trust sigstore add --identity {identity} --issuer "
    "{issuer} --trusted-root trusted_root.json` again."
)


@dataclass(frozen=True)
class TrustedIdentity:
    """A Sigstore signer you trust: identity, issuer, and the trust root to check with.

    Attributes
    ----------
    identity : str
        The certificate's subject alternative name (e-mail or URI), exactly.
    issuer : str
        The OpenID Connect issuer URL, exactly.
    trusted_root : str
        The pinned ``trusted_root.json`` (JSON text).
    added : datetime
        When the trust root was pinned (its age is measured from here).
    max_age_days : int
        Loads refuse the root once it is older than this.
    entry_id : str
        SHA-256 (hex) of ``identity`` and ``issuer``.
    """

    identity: str
    issuer: str
    trusted_root: str
    added: datetime
    max_age_days: int
    entry_id: str


def _sigstore() -> Any:
    try:
        import sigstore.errors
        import sigstore.models
        import sigstore.verify
        import sigstore.verify.policy
    except ImportError:
        raise SafeModelError(
            "Sigstore (keyless) signatures need the sigstore package: "
            "pip install 'safemodel[sigstore]'."
        ) from None
    return sigstore


def _entry_id(identity: str, issuer: str) -> str:
    return hashlib.sha256(f"{identity}\n{issuer}".encode()).hexdigest()


def _root(text: str) -> Any:
    import tempfile

    sigstore = _sigstore()
    # TrustedRoot reads files only; a private temporary copy keeps the stored text the
    # one source of truth.
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trusted_root.json")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return sigstore.models.TrustedRoot.from_file(path)


def sigstore_add(
    identity: str,
    issuer: str,
    trusted_root: str | os.PathLike[str],
    *,
    max_age_days: int = DEFAULT_MAX_AGE_DAYS,
    home: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> TrustedIdentity:
    """Trust a Sigstore signer, verified offline against a pinned trust root.

    Parameters
    ----------
    identity : str
        The signer's identity as the certificate states it (``alice@example.com``,
        or a CI workflow URI), matched exactly.
    issuer : str
        The OpenID Connect issuer (``https://accounts.google.com``,
        ``https://token.actions.githubusercontent.com``), matched exactly.
    trusted_root : path
        A ``trusted_root.json`` of the Sigstore instance; copied into the store.
    max_age_days : int, default 90
        Loads refuse this root once it is older; add it again to refresh it.
    home : path, optional
        The safemodel home folder.
    now : datetime, optional
        The time recorded as the root's age origin (default: now).

    Returns
    -------
    TrustedIdentity

    Raises
    ------
    InvalidArgument
        An empty identity or issuer, a bad ``max_age_days``, or a file that is not a
        Sigstore trust root.
    SafeModelError
        sigstore is not installed.
    """
    for name, value in (("identity", identity), ("issuer", issuer)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgument.of("sigstore_add", name, "a non-empty string", value)
    if isinstance(max_age_days, bool) or not isinstance(max_age_days, int) or max_age_days < 1:
        raise InvalidArgument.of("sigstore_add", "max_age_days", "an int >= 1", max_age_days)
    with open(trusted_root, encoding="utf-8") as fh:
        text = fh.read()
    try:
        _sigstore().verify.Verifier(trusted_root=_root(text))  # complete enough to verify
    except SafeModelError:
        raise
    except Exception as exc:  # pydantic/json errors of a file that is not a trust root
        raise InvalidArgument.of("sigstore_add", "trusted_root", "a Sigstore "
                                 "trusted_root.json", f"{trusted_root} ({type(exc).__name__})"
                                 ) from None
    added = (now or datetime.now(UTC)).astimezone(UTC)
    entry = TrustedIdentity(identity, issuer, text, added, max_age_days,
                            _entry_id(identity, issuer))
    _FOLDER.write(safemodel_home(home), entry.entry_id, {
        "identity": identity, "issuer": issuer, "max_age_days": max_age_days,
        "added": added.isoformat(timespec="seconds"), "trusted_root": json.loads(text),
    })
    return entry


def _read_entry(path: Path) -> TrustedIdentity:
    raw = json.loads(path.read_text(encoding="utf-8"))
    identity, issuer = str(raw["identity"]), str(raw["issuer"])
    if _entry_id(identity, issuer) != path.stem:
        raise IntegrityError(
            f"The trusted Sigstore entry {str(path)!r} names another signer than its "
            "file name says: it was edited by hand. Remove it and add it again.",
            member=path.name, expected=path.stem, found=_entry_id(identity, issuer))
    return TrustedIdentity(identity, issuer, json.dumps(raw["trusted_root"]),
                           datetime.fromisoformat(raw["added"]), int(raw["max_age_days"]),
                           path.stem)


_FOLDER: Final = TrustFolder(SIGSTORE_STORE_FOLDER, _read_entry, lambda entry: entry.entry_id)


def sigstore_list(home: str | os.PathLike[str] | None = None) -> list[TrustedIdentity]:
    """The trusted Sigstore signers, sorted by identity."""
    return sorted(_FOLDER.entries(safemodel_home(home)), key=lambda e: (e.identity, e.issuer))


def sigstore_remove(entry_id: str, *, home: str | os.PathLike[str] | None = None
                    ) -> TrustedIdentity:
    """Stop trusting a Sigstore signer, by entry id or a unique prefix of it."""
    return _FOLDER.remove(safemodel_home(home), entry_id, function="sigstore_remove",
                          argument="entry_id", expected=lambda _: "the id (or a unique "
                          "prefix) of a trusted Sigstore signer")


def verify_keyless(
    sidecar: bytes,
    *,
    source: str = "model.sig",
    home: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> tuple[TrustedKey, bytes]:
    """Verify a Sigstore keyless model signing signature; return the signer and payload.

    Parameters
    ----------
    sidecar : bytes
        The signature file (a Sigstore bundle v0.3 holding a DSSE envelope).
    source : str
        Its name, for messages.
    home : path, optional
        The safemodel home folder (its trusted Sigstore signers).
    now : datetime, optional
        The time the trust roots' ages are measured at (default: now).

    Returns
    -------
    tuple of (TrustedKey, bytes)
        The signer (the certificate's key, labelled with identity and issuer) and the
        signed in-toto statement.

    Raises
    ------
    UntrustedBundleError
        No trusted signer is configured, the certificate names another identity or
        issuer, or every matching trust root is older than its maximum age.
    IntegrityError
        The signature does not verify against any pinned trust root (forged, edited,
        or from another Sigstore instance).
    """
    entries = sigstore_list(home)
    if not entries:
        raise UntrustedBundleError(
            f"The model signing signature {source!r} is a Sigstore (keyless) signature, "
            "and no Sigstore signer is trusted here. Trust one: `safemodel trust sigstore "
            "add --identity ID --issuer URL --trusted-root trusted_root.json`.",
            signer="sigstore", member=source, expected="a trusted Sigstore signer",
            found="no trusted Sigstore signer")
    sigstore = _sigstore()
    try:
        bundle = sigstore.models.Bundle.from_json(sidecar)
    except Exception as exc:  # sigstore raises its own and pydantic errors here
        raise IntegrityError(
            f"The Sigstore signature {source!r} cannot be read: {exc}. Nothing was unpickled.",
            member=source, expected="a Sigstore bundle", found=type(exc).__name__) from None
    at = (now or datetime.now(UTC)).astimezone(UTC)
    stale: list[TrustedIdentity] = []
    for entry in entries:
        if at - entry.added > timedelta(days=entry.max_age_days):
            stale.append(entry)
            continue
        verifier = sigstore.verify.Verifier(trusted_root=_root(entry.trusted_root))
        rule = sigstore.verify.policy.Identity(identity=entry.identity, issuer=entry.issuer)
        try:
            payload_type, payload = verifier.verify_dsse(bundle, rule)
        except Exception:  # hostile input: any failure means "does not verify"
            continue
        if payload_type != "application/vnd.in-toto+json":
            raise IntegrityError(
                f"The Sigstore signature {source!r} verifies but signs a {payload_type!r} "
                "payload, not an in-toto statement. Nothing was unpickled.",
                member=source, expected="application/vnd.in-toto+json", found=payload_type)
        key = bundle.signing_certificate.public_key()
        return TrustedKey(key, key_type(key), key_id(key),
                          f"{entry.identity} via {entry.issuer}",
                          "trusted Sigstore signer"), payload
    raise _refusal(bundle, entries, stale, sigstore, source, at)


def _refusal(bundle: Any, entries: list[TrustedIdentity], stale: list[TrustedIdentity],
             sigstore: Any, source: str, at: datetime) -> SafeModelError:
    who = _claimed(bundle)
    fresh = [e for e in entries if e not in stale]
    crypto_ok = any(_verifies_at_all(bundle, e, sigstore) for e in fresh)
    if stale and not crypto_ok:
        entry = stale[0]
        return UntrustedBundleError(
            f"The model signing signature {source!r} is a Sigstore signature, and the trust "
            f"root pinned for {entry.identity} on {entry.added:%Y-%m-%d} is older than its "
            f"maximum age ({entry.max_age_days} days, now {at:%Y-%m-%d}). "
            + _REFRESH.format(identity=entry.identity, issuer=entry.issuer),
            signer=who, member=source, expected="a fresh trust root", found="a stale one")
    if crypto_ok:
        trusted = [f"{e.identity} via {e.issuer}" for e in fresh]
        return UntrustedBundleError(
            f"The model signing signature {source!r} is a valid Sigstore signature by "
            f"{who}, which you do not trust (trusted: {trusted}). If you trust them: "
            "`safemodel trust sigstore add --identity ... --issuer ... --trusted-root ...`.",
            signer=who, member=source, expected="a trusted Sigstore signer", found=who)
    return IntegrityError(
        f"The model signing signature {source!r} (a Sigstore signature claiming {who}) "
        "does not verify against any pinned trust root: it was forged or edited, or comes "
        "from another Sigstore instance. Nothing was unpickled.",
        member=source, expected="a signature verifying against a pinned trust root",
        found=who)


def _verifies_at_all(bundle: Any, entry: TrustedIdentity, sigstore: Any) -> bool:
    # Is the signature sound, whoever made it? Tells "untrusted signer" from "forged".
    verifier = sigstore.verify.Verifier(trusted_root=_root(entry.trusted_root))
    try:
        verifier.verify_dsse(bundle, sigstore.verify.policy.UnsafeNoOp())
    except Exception:  # as in verify_keyless
        return False
    return True


def _claimed(bundle: Any) -> str:
    """The identity and issuer the certificate claims (unverified; for messages)."""
    from cryptography import x509

    cert = bundle.signing_certificate
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(x509.RFC822Name)] + \
            [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
    except x509.ExtensionNotFound:
        names = []
    issuer = "an unknown issuer"
    for oid in ("1.3.6.1.4.1.57264.1.8", "1.3.6.1.4.1.57264.1.1"):
        try:
            value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
        except x509.ExtensionNotFound:
            continue
        raw = value.value
        issuer = raw[2:].decode(errors="replace") if oid.endswith(".8") else raw.decode(
            errors="replace")
        break
    return f"{names[0] if names else 'an unnamed identity'} via {issuer}"
