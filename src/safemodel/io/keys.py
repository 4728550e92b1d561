"""The user's signing key and the keys they trust, kept in the safemodel home folder.

The home folder is ``$SAFEMODEL_HOME`` if set, else ``$XDG_CONFIG_HOME/safemodel``,
else ``~/.config/safemodel``. It holds::

    signing-key.pem            the user's private key, Ed25519 by default or ECDSA
                               P-256 (PKCS#8 PEM, mode 0600)
    trusted/<key id>.json      one trusted public key per file (the trust store)

The folder is created with mode 0700, the private key with mode 0600, both on first
use (:func:`default_signing_key`, called by every save without an explicit key). The
key is written to a temporary file and linked into place, so two processes saving
for the first time at once agree on one key. A private key file that others can
read is refused, as ``ssh`` refuses one.

A trust store entry is JSON: ``{"key_type": "ed25519", "label": ..., "public_key":
<PEM>, "added": <ISO time>}`` (``key_type`` ``"ecdsa-p256"``, ``"ecdsa-p384"`` or
``"ecdsa-p521"`` for the ECDSA keys OpenSSF model signing uses). The key type is
recorded, never guessed from the key's text nor read from a signature file; the
recorded type must be the type of the stored key, and the file name must be the key
id of the stored key, so an entry edited by hand into another key is refused. One
file per key means two ``safemodel trust add`` at once never lose an entry.

:func:`trusted_keys` gathers every key a load may accept, each with where it came
from: the user's own key, the trust store, ``$SAFEMODEL_TRUSTED_KEYS``
(``os.pathsep``-separated PEM files or folders of ``*.pem`` files) and a caller's
explicit ``trusted_keys=`` list (key objects, PEM text, or paths). Every load calls it
through :func:`safemodel.io.trust.decide_trust`; the CLI's ``safemodel keys`` and
``safemodel trust`` commands call :func:`default_signing_key`, :func:`public_pem`,
:func:`trust_add`, :func:`trust_list` and :func:`trust_remove`.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from safemodel.errors import InvalidArgument
from safemodel.io.signing import (
    ECDSA_P256,
    ECDSA_P384,
    ECDSA_P521,
    ED25519,
    HMAC_SHA256,
    HmacKey,
    SigningKeyError,
    key_id,
    key_type,
    load_pem_key,
    public_pem,
    short_key_id,
)
from safemodel.io.trust_folder import TrustFolder

__all__ = [
    "HOME_ENV",
    "PRIVATE_KEY_FILE",
    "TRUSTED_KEYS_ENV",
    "TRUST_STORE_FOLDER",
    "TrustedKey",
    "default_signing_key",
    "own_key",
    "public_pem",
    "safemodel_home",
    "trust_add",
    "trust_list",
    "trust_remove",
    "trusted_keys",
]

#: The environment variable naming the safemodel home folder.
HOME_ENV: Final = "SAFEMODEL_HOME"
#: The environment variable listing extra trusted public keys (PEM files or folders).
TRUSTED_KEYS_ENV: Final = "SAFEMODEL_TRUSTED_KEYS"
#: The user's private key, inside the home folder.
PRIVATE_KEY_FILE: Final = "signing-key.pem"
#: The trust store, inside the home folder.
TRUST_STORE_FOLDER: Final = "trusted"

_POSIX: Final = os.name == "posix"
_STORED_TYPES: Final = (ED25519, ECDSA_P256, ECDSA_P384, ECDSA_P521)


@dataclass(frozen=True)
class TrustedKey:
    """One key a load may accept, and where it came from.

    Attributes
    ----------
    key : Ed25519PublicKey, EllipticCurvePublicKey or HmacKey
        The key that verifies.
    key_type : str
        ``"ed25519"``, ``"ecdsa-p256"`` (or ``-p384``, ``-p521``) or
        ``"hmac-sha256"``; recorded, never guessed.
    key_id : str or None
        The key id (:func:`safemodel.io.signing.key_id`); ``None`` for HMAC.
    label : str
        A name for people ("alice@laptop", "publisher: data platform").
    source : str
        ``"own key"``, ``"trust store"``, ``"$SAFEMODEL_TRUSTED_KEYS: <path>"`` or
        ``"trusted_keys[<i>]"``.
    """

    key: Any
    key_type: str
    key_id: str | None
    label: str
    source: str

    @property
    def short_id(self) -> str:
        """The first 16 hex digits of the key id (``"hmac"`` for an HMAC key)."""
        return short_key_id(self.key_id) if self.key_id else "hmac"


def safemodel_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Return the safemodel home folder (not created here).

    Parameters
    ----------
    home : path, optional
        Used as given when not ``None``; else ``$SAFEMODEL_HOME``; else
        ``$XDG_CONFIG_HOME/safemodel``; else ``~/.config/safemodel``.

    Examples
    --------
    >>> safemodel_home("/srv/models/.safemodel")
    PosixPath('/srv/models/.safemodel')
    """
    if home is not None:
        return Path(home)
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV])
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "safemodel"


def own_key(home: str | os.PathLike[str] | None = None) -> Any:
    """The user's private key, or ``None`` if it was never created; never creates it.

    Raises
    ------
    SigningKeyError
        If the key file exists but others can read it (POSIX), or it is not an
        unencrypted Ed25519 or ECDSA private key.
    """
    path = safemodel_home(home) / PRIVATE_KEY_FILE
    try:
        with open(path, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            pem = fh.read()
    except FileNotFoundError:
        return None
    if _POSIX and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(
            f"The private key {str(path)!r} can be read by other users (mode "
            f"{stat.S_IMODE(mode):o}); it is not used. Run `chmod 600 {path}` if only you "
            "had access, else delete it and save again to create a new key."
        )
    key = load_pem_key(pem)
    if not hasattr(key, "sign"):
        raise SigningKeyError(
            f"{str(path)!r} holds a public key; it must hold your private key. "
            "Delete it and save again to create a new key."
        )
    return key


def default_signing_key(
    home: str | os.PathLike[str] | None = None, *, key_type: str = ED25519
) -> Any:
    """The user's private key, created in the home folder on first use.

    Parameters
    ----------
    home : path, optional
        The home folder (see :func:`safemodel_home`).
    key_type : {"ed25519", "ecdsa-p256"}, default "ed25519"
        The type of key to create when there is none yet (``safemodel keys create
        --type``); an existing key is returned whatever its type. ECDSA P-256 is the
        type OpenSSF model signing accepts (``save(..., sidecar=True)``).

    Returns
    -------
    Ed25519PrivateKey or EllipticCurvePrivateKey
        The same key on every call; two processes creating it at once get the same.

    Raises
    ------
    SigningKeyError
        If an existing key file cannot be used (see :func:`own_key`).
    InvalidArgument
        If ``key_type`` is neither ``"ed25519"`` nor ``"ecdsa-p256"``.
    """
    if key_type not in (ED25519, ECDSA_P256):
        raise InvalidArgument.of("default_signing_key", "key_type",
                                 f"{ED25519!r} or {ECDSA_P256!r}", key_type)
    existing = own_key(home)
    if existing is not None:
        return existing
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = _make_home(safemodel_home(home))
    new_key: Any = (Ed25519PrivateKey.generate() if key_type == ED25519
                    else ec.generate_private_key(ec.SECP256R1()))
    pem = new_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # mkstemp creates the file with mode 0600; link() refuses to replace a key another
    # process made meanwhile, and then that key is the one both use.
    with _temporary(folder) as tmp:
        tmp.write_bytes(pem)
        _fsync(tmp)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, folder / PRIVATE_KEY_FILE)
    key = own_key(folder)
    assert key is not None  # linked above, or by the process that won the race
    return key


def trust_add(
    key: Any,
    *,
    label: str | None = None,
    home: str | os.PathLike[str] | None = None,
) -> TrustedKey:
    """Add an Ed25519 or ECDSA public key to the trust store (``safemodel trust add``).

    Parameters
    ----------
    key : Ed25519PublicKey, EllipticCurvePublicKey, PEM text (str or bytes), or a path
        to a PEM file
        The publisher's public key (``safemodel keys show`` prints it). A private key
        is accepted and only its public half stored.
    label : str, optional
        A name for people; defaults to the file name or the short key id.
    home : path, optional
        The home folder (see :func:`safemodel_home`).

    Returns
    -------
    TrustedKey
        The stored entry. Adding a key again replaces its label.

    Raises
    ------
    SigningKeyError
        If the key is neither Ed25519 nor ECDSA P-256/384/521 (HMAC secrets are never
        stored).
    """
    public, default_label = _as_public_key(key, "trust_add")
    full_id = key_id(public)
    entry = {
        "key_type": key_type(public),
        "label": label or default_label or short_key_id(full_id),
        "public_key": public_pem(public),
        "added": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    folder = _make_home(safemodel_home(home)) / TRUST_STORE_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    with _temporary(folder) as tmp:
        tmp.write_text(json.dumps(entry, indent=1) + "\n", encoding="utf-8")
        _fsync(tmp)
        os.replace(tmp, folder / f"{full_id}.json")
    return TrustedKey(public, key_type(public), full_id, str(entry["label"]), "trust store")


def trust_list(home: str | os.PathLike[str] | None = None) -> list[TrustedKey]:
    """The trust store's keys, sorted by label then key id.

    Raises
    ------
    SigningKeyError
        If an entry is unreadable, of an unknown key type, or its file name is not
        the key id of the key it holds.
    """
    entries = _FOLDER.entries(safemodel_home(home))
    return sorted(entries, key=lambda entry: (entry.label, entry.key_id or ""))


def trust_remove(key_or_id: str, *, home: str | os.PathLike[str] | None = None) -> TrustedKey:
    """Remove a key from the trust store by key id or a unique prefix of it.

    Raises
    ------
    InvalidArgument
        If no entry, or more than one, matches.
    """
    def expected(entries: list[TrustedKey]) -> str:
        known = ", ".join(f"{e.short_id} ({e.label})"
                          for e in sorted(entries, key=lambda e: (e.label, e.key_id or "")))
        return f"the id (or a unique prefix) of one trusted key; trusted: {known or 'none'}"

    return _FOLDER.remove(safemodel_home(home), key_or_id, function="trust_remove",
                          argument="key_or_id", expected=expected)


def trusted_keys(
    explicit: Iterable[Any] | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
) -> list[TrustedKey]:
    """Every key a load accepts: own key, trust store, environment, explicit list.

    Parameters
    ----------
    explicit : iterable, optional
        The caller's ``trusted_keys=``: Ed25519 keys, :class:`HmacKey`, PEM text, or
        paths (``os.PathLike``) to PEM files or folders of ``*.pem`` files.
    home : path, optional
        The home folder (see :func:`safemodel_home`). The user's key is not created.

    Returns
    -------
    list of TrustedKey
        In that order; a key may appear more than once, from different sources.

    Raises
    ------
    SigningKeyError
        If a configured key cannot be read: a missing file in
        ``$SAFEMODEL_TRUSTED_KEYS`` is an error, not silently skipped.
    InvalidArgument
        If ``explicit`` is a single key or string rather than a collection.
    """
    found: list[TrustedKey] = []
    mine = own_key(home)
    if mine is not None:
        found.append(TrustedKey(mine.public_key(), key_type(mine), key_id(mine),
                                "your own key", "own key"))
    found.extend(trust_list(home))
    for part in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep):
        if part.strip():
            found.extend(_keys_at(Path(part.strip()), f"${TRUSTED_KEYS_ENV}: {part.strip()}"))
    if explicit is not None:
        if isinstance(explicit, str | bytes | HmacKey | os.PathLike) or hasattr(explicit, "verify"):
            raise InvalidArgument.of(
                "load", "trusted_keys", "a list of keys, PEM texts or paths", explicit
            )
        for index, item in enumerate(explicit):
            found.extend(_explicit_key(item, f"trusted_keys[{index}]"))
    return found


def _explicit_key(item: Any, source: str) -> list[TrustedKey]:
    if isinstance(item, HmacKey):
        return [TrustedKey(item, HMAC_SHA256, None, "HMAC secret", source)]
    if isinstance(item, os.PathLike):
        return _keys_at(Path(item), source)
    public, label = _as_public_key(item, "load")
    return [TrustedKey(public, key_type(public), key_id(public), label or "given key", source)]


def _as_public_key(key: Any, function: str) -> tuple[Any, str | None]:
    # Returns the public key and a default label (the file's stem for a path).
    label = None
    if isinstance(key, os.PathLike):
        path = Path(key)
        label, key = path.stem, _read_bytes(path)
    if isinstance(key, str | bytes):
        key = load_pem_key(key)
    if hasattr(key, "public_key") and hasattr(key, "sign"):
        key = key.public_key()
    if not hasattr(key, "verify") or not hasattr(key, "public_bytes"):
        raise SigningKeyError(
            f"{function} needs an Ed25519 or ECDSA public key (object, PEM text or a path to a PEM "
            f"file); got {type(key).__name__}. HMAC secrets are never stored in the trust "
            "store; pass signing_key=HmacKey(secret) to load."
        )
    key_id(key)  # refuses a key of another algorithm
    return key, label


def _keys_at(path: Path, source: str) -> list[TrustedKey]:
    files = sorted(path.glob("*.pem")) if path.is_dir() else [path]
    keys = []
    for file in files:
        public, label = _as_public_key(file, "trusted keys")
        keys.append(TrustedKey(public, key_type(public), key_id(public), label or file.name,
                               source))
    return keys


def _read_entry(path: Path) -> TrustedKey:
    try:
        entry = json.loads(_read_bytes(path))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        entry = None
    if not isinstance(entry, dict) or not isinstance(entry.get("public_key"), str):
        raise SigningKeyError(
            f"The trust store entry {str(path)!r} is not valid JSON with a 'public_key'; "
            "remove it and add the key again with `safemodel trust add`."
        )
    recorded = entry.get("key_type")
    if recorded not in _STORED_TYPES:
        raise SigningKeyError(
            f"The trust store entry {str(path)!r} has key_type {recorded!r}; this "
            f"version of safemodel knows {list(_STORED_TYPES)}. Upgrade safemodel, or "
            "remove the entry."
        )
    public, _ = _as_public_key(entry["public_key"], "the trust store")
    if key_type(public) != recorded:
        raise SigningKeyError(
            f"The trust store entry {str(path)!r} records key_type {recorded!r} but holds "
            f"an {key_type(public)!r} key; it was edited by hand. Remove it and add the "
            "key again."
        )
    full_id = key_id(public)
    if path.stem != full_id:
        raise SigningKeyError(
            f"The trust store entry {str(path)!r} holds key {full_id}, not the key its "
            "name says; it was edited by hand. Remove it and add the key again."
        )
    return TrustedKey(public, recorded, full_id, str(entry.get("label") or full_id[:16]),
                      "trust store")


# Entries are written by trust_add itself: owner-only, in an owner-only home folder.
_FOLDER: Final = TrustFolder(TRUST_STORE_FOLDER, _read_entry,
                             lambda entry: entry.key_id or "")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(
            f"Cannot read the key file {str(path)!r}: {exc.strerror or exc}. Check the "
            f"path (given directly, in ${TRUSTED_KEYS_ENV} or in the trust store)."
        ) from None


def _make_home(folder: Path) -> Path:
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _POSIX:
            folder.chmod(0o700)  # mkdir's mode is filtered by the umask
    return folder


@contextlib.contextmanager
def _temporary(folder: Path) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())

