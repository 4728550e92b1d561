"""Certificate authorities you trust for model signing's *certificate* mode.

``model_signing sign certificate`` writes a signature whose ``verificationMaterial``
is an X.509 chain (leaf first) instead of a key hint. safemodel accepts it when:

1. the chain leads, through the intermediates it carries, to a CA certificate you
   registered (``safemodel trust ca add CA.pem``; kept in ``trusted-ca/<SHA-256 of the
   CA's DER>.json`` in the safemodel home folder), checked with ``cryptography``'s
   X.509 path validation: signatures, CA basic constraints and key usage, and every
   certificate valid *now*;
2. the leaf may sign code: key usage, if present, includes ``digitalSignature``;
   extended key usage, if present, includes ``codeSigning``; at least one of the two
   is present (model signing accepts either one alone; safemodel also refuses a leaf
   whose extended key usage names other purposes only);
3. when the CA entry pins identities, the leaf names one of them (a subject
   alternative name, e-mail, URI or DNS, or else its subject common name);
4. the leaf's public key verifies the DSSE signature (:mod:`safemodel.io.model_signing`).

Validity is checked at the time of loading, not at the leaf's ``notBefore`` as model
signing does: the signature carries no trusted timestamp, so nothing proves it was
made while the certificate was valid. An expired or revoked-by-expiry leaf is refused;
re-sign with a current certificate. Revocation lists are not consulted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from safemodel.errors import IntegrityError, InvalidArgument, UntrustedBundleError
from safemodel.io.keys import safemodel_home
from safemodel.io.trust_folder import TrustFolder

__all__ = [
    "CA_STORE_FOLDER",
    "TrustedCA",
    "ca_add",
    "ca_list",
    "ca_remove",
    "verify_chain",
]

#: The folder of the home folder holding trusted CA certificates.
CA_STORE_FOLDER: Final = "trusted-ca"
_MAX_DEPTH: Final = 8


@dataclass(frozen=True)
class TrustedCA:
    """A CA certificate trusted to vouch for model signing certificates.

    Attributes
    ----------
    certificate : cryptography.x509.Certificate
    ca_id : str
        SHA-256 (hex) of the certificate's DER bytes.
    label : str
        A name for people.
    identities : tuple of str
        The leaf identities accepted under this CA; empty: any leaf it issued.
    """

    certificate: Any
    ca_id: str
    label: str
    identities: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """The CA's subject, as RFC 4514 text."""
        return str(self.certificate.subject.rfc4514_string())


def _load_certificate(source: Any, function: str) -> Any:
    from cryptography import x509

    data = Path(source).read_bytes() if isinstance(source, str | os.PathLike) \
        and not str(source).lstrip().startswith("-----") else source
    if isinstance(data, str):
        data = data.encode()
    if isinstance(data, x509.Certificate):
        return data
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InvalidArgument.of(function, "certificate", "a PEM CA certificate (file or "
                                 "text)", source) from None
    if len(certificates) != 1:
        raise InvalidArgument.of(function, "certificate", "exactly one PEM certificate",
                                 f"{len(certificates)} certificates in {source!r}")
    return certificates[0]


def _ca_id(certificate: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def ca_add(
    certificate: Any,
    *,
    identities: Iterable[str] = (),
    label: str | None = None,
    home: str | os.PathLike[str] | None = None,
) -> TrustedCA:
    """Trust a CA certificate for model signing's certificate mode.

    Parameters
    ----------
    certificate : path, PEM text or bytes, or cryptography.x509.Certificate
        The CA certificate (a root, or an intermediate you want to pin).
    identities : iterable of str
        Pin the signers: a leaf must name one of these (SAN or subject CN).
    label : str, optional
        A name for people (default: the CA's subject).
    home : path, optional
        The safemodel home folder.

    Returns
    -------
    TrustedCA

    Raises
    ------
    InvalidArgument
        Not one PEM certificate, or not a CA certificate.
    """
    from cryptography import x509

    cert = _load_certificate(certificate, "ca_add")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise InvalidArgument.of("ca_add", "certificate", "a CA certificate (basic "
                                 "constraints CA:TRUE)", cert.subject.rfc4514_string())
    names = tuple(sorted({str(i) for i in identities}))
    entry = TrustedCA(cert, _ca_id(cert), label or cert.subject.rfc4514_string(), names)
    from cryptography.hazmat.primitives.serialization import Encoding

    _FOLDER.write(safemodel_home(home), entry.ca_id, {
        "certificate": cert.public_bytes(Encoding.PEM).decode("ascii"),
        "label": entry.label, "identities": list(names),
        "added": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    return entry


def _read_entry(path: Path) -> TrustedCA:
    raw = json.loads(path.read_text())
    cert = _load_certificate(raw["certificate"].encode(), "ca_list")
    if _ca_id(cert) != path.stem:
        raise IntegrityError(
            f"The trusted CA entry {str(path)!r} holds another certificate than its "
            "name says: it was edited by hand. Remove it and add the CA again.",
            member=path.name, expected=path.stem, found=_ca_id(cert))
    return TrustedCA(cert, path.stem, str(raw.get("label", path.stem)),
                     tuple(str(i) for i in raw.get("identities", ())))


_FOLDER: Final = TrustFolder(CA_STORE_FOLDER, _read_entry, lambda entry: entry.ca_id)


def ca_list(home: str | os.PathLike[str] | None = None) -> list[TrustedCA]:
    """The trusted CA certificates, sorted by label.

    Raises
    ------
    IntegrityError
        An entry whose file name is not the SHA-256 of its certificate (edited by hand).
    """
    return sorted(_FOLDER.entries(safemodel_home(home)), key=lambda e: e.label)


def ca_remove(ca_id: str, *, home: str | os.PathLike[str] | None = None) -> TrustedCA:
    """Stop trusting a CA, by its id or a unique prefix of it."""
    return _FOLDER.remove(safemodel_home(home), ca_id, function="ca_remove", argument="ca_id",
                          expected=lambda _: "the id (or a unique prefix) of a trusted CA: "
                                             "`safemodel trust ca list`")


def _leaf_identities(leaf: Any) -> list[str]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    names: list[str] = []
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
            names.extend(str(v) for v in san.get_values_for_type(kind))
    except x509.ExtensionNotFound:
        pass
    if not names:
        names = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return names


def _signing_use_problem(leaf: Any) -> str | None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    extensions = leaf.extensions
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    try:
        purposes = list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        purposes = None
    if usage is None and purposes is None:
        return "it states neither key usage nor extended key usage"
    if usage is not None and not usage.digital_signature:
        return "its key usage does not include digitalSignature"
    if purposes is not None and ExtendedKeyUsageOID.CODE_SIGNING not in purposes \
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in purposes:
        shown = [getattr(p, "_name", p.dotted_string) for p in purposes]
        return f"its extended key usage is {shown}, without codeSigning"
    return None


def verify_chain(
    certificates: Sequence[bytes],
    cas: Iterable[TrustedCA],
    *,
    source: str = "model.sig",
    now: datetime | None = None,
) -> tuple[Any, TrustedCA, str]:
    """Validate a signature's certificate chain; return the leaf's key, its CA, its name.

    Parameters
    ----------
    certificates : sequence of bytes
        DER certificates, the signing (leaf) certificate first, then intermediates.
    cas : iterable of TrustedCA
        The trusted CAs (:func:`ca_list`).
    source : str
        The signature file's name, for messages.
    now : datetime, optional
        The validation time; defaults to now (UTC).

    Returns
    -------
    tuple of (public key, TrustedCA, str)
        The leaf's public key (which must then verify the signature), the trusted CA
        the chain ends at, and the leaf identity that matched (or its first name).

    Raises
    ------
    UntrustedBundleError
        No trusted CA issued the chain, or the CA pins identities the leaf lacks.
    IntegrityError
        A certificate that cannot be parsed, an invalid or expired chain, or a leaf
        not allowed to sign code.
    """
    from cryptography import x509
    from cryptography.x509 import verification as xv

    def refuse(reason: str) -> IntegrityError:
        return IntegrityError(
            f"The model signing signature {source!r} carries a certificate chain that "
            f"cannot be accepted: {reason}. Nothing was unpickled.",
            member=source, expected="a valid code-signing certificate chain", found=reason)

    try:
        chain = [x509.load_der_x509_certificate(c) for c in certificates]
    except ValueError:
        raise refuse("a certificate in it is not DER X.509") from None
    if not chain:
        raise refuse("it is empty")
    leaf = chain[0]
    trusted = list(cas)
    at = now or datetime.now(UTC)
    ids = _leaf_identities(leaf)
    shown = ids[0] if ids else leaf.subject.rfc4514_string()
    if not trusted:
        raise _untrusted(source, shown, "no CA is trusted here")
    for expiry_check in (leaf, *chain[1:]):
        if not expiry_check.not_valid_before_utc <= at <= expiry_check.not_valid_after_utc:
            raise refuse(
                f"{expiry_check.subject.rfc4514_string()!r} is valid from "
                f"{expiry_check.not_valid_before_utc:%Y-%m-%d} to "
                f"{expiry_check.not_valid_after_utc:%Y-%m-%d}, not now ({at:%Y-%m-%d}); "
                "re-sign with a current certificate")
    store = xv.Store([ca.certificate for ca in trusted])
    builder = (xv.PolicyBuilder().store(store).time(at).max_chain_depth(_MAX_DEPTH)
               .extension_policies(ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(),
                                   ee_policy=xv.ExtensionPolicy.permit_all()))
    try:
        verified = builder.build_client_verifier().verify(leaf, chain[1:])
    except xv.VerificationError as exc:
        raise _untrusted(source, shown, f"its chain does not lead to a trusted CA ({exc})") \
            from None
    anchor = _ca_id(verified.chain[-1])
    ca = next(c for c in trusted if c.ca_id == anchor)
    problem = _signing_use_problem(leaf)
    if problem is not None:
        raise refuse(f"the signing certificate may not sign code: {problem}")
    if ca.identities:
        matched = [i for i in ids if i in ca.identities]
        if not matched:
            raise _untrusted(source, shown, f"the CA {ca.label!r} is trusted only for "
                             f"{list(ca.identities)}, and the certificate names {ids}")
        shown = matched[0]
    return leaf.public_key(), ca, shown


def _untrusted(source: str, who: str, reason: str) -> UntrustedBundleError:
    return UntrustedBundleError(
        f"The model signing signature {source!r} is by certificate {who!r}, which you do "
        f"not trust: {reason}. If you trust its CA, add it: `safemodel trust ca add "
        "CA.pem [--identity NAME]`.",
        signer=who, member=source, expected="a certificate from a trusted CA", found=who)
