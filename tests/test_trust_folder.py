"""The trust store folders (keys, CAs, Sigstore signers) share one helper and one rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import safemodel as sm
from safemodel.io.keys import trust_add, trust_list, trust_remove
from safemodel.io.signing import public_pem
from safemodel.io.trust_folder import TrustFolder
from safemodel.io.x509_trust import ca_add, ca_list, ca_remove

DATA = Path(__file__).parent / "data" / "model_signing"


def _read(path: Path) -> dict[str, Any]:
    return {"id": path.stem, **json.loads(path.read_text())}


def test_a_trust_folder_writes_reads_and_removes_entries(tmp_path: Path) -> None:
    folder: TrustFolder[dict[str, Any]] = TrustFolder("trusted-things", _read, lambda e: e["id"])
    assert folder.entries(tmp_path) == []  # no folder yet
    folder.write(tmp_path, "ab12", {"what": "one"})
    folder.write(tmp_path, "ab34", {"what": "two"})
    folder.write(tmp_path, "ab34", {"what": "two, again"})  # replaces
    assert folder.entries(tmp_path) == [{"id": "ab12", "what": "one"},
                                        {"id": "ab34", "what": "two, again"}]
    assert sorted(p.name for p in (tmp_path / "trusted-things").iterdir()) \
        == ["ab12.json", "ab34.json"]  # no temporary file left

    def expected(entries: list[dict[str, Any]]) -> str:
        return f"one of {[e['id'] for e in entries]}"

    for prefix in ("ab", "", "  ", "cd"):  # ambiguous, empty, blank, unknown
        with pytest.raises(sm.InvalidArgument, match=r"one of \['ab12', 'ab34'\]") as err:
            folder.remove(tmp_path, prefix, function="f", argument="x", expected=expected)
        assert (err.value.argument, err.value.found) == ("x", prefix)
    assert folder.remove(tmp_path, " AB1 ", function="f", argument="x",
                         expected=expected)["what"] == "one"
    assert [e["id"] for e in folder.entries(tmp_path)] == ["ab34"]


def _key(home: Path) -> tuple[str, Callable[[str], Any], Callable[[], list[Any]]]:
    entry = trust_add(public_pem(Ed25519PrivateKey.generate().public_key()), home=home)
    return (entry.key_id or "", lambda prefix: trust_remove(prefix, home=home),
            lambda: trust_list(home))


def _ca(home: Path) -> tuple[str, Callable[[str], Any], Callable[[], list[Any]]]:
    entry = ca_add(DATA / "certificate" / "ca-cert.pem", home=home)
    return entry.ca_id, lambda prefix: ca_remove(prefix, home=home), lambda: ca_list(home)


@pytest.mark.parametrize("kind", [_key, _ca])
def test_every_trust_store_removes_by_one_rule(
    kind: Callable[[Path], tuple[str, Callable[[str], Any], Callable[[], list[Any]]]],
    tmp_path: Path,
) -> None:
    entry_id, remove, listed = kind(tmp_path)
    with pytest.raises(sm.InvalidArgument):
        remove("")  # never "the only entry there is"
    with pytest.raises(sm.InvalidArgument):
        remove("not-an-id")
    assert len(listed()) == 1
    remove(f" {entry_id[:10].upper()} ")  # as a person may paste it
    assert listed() == []
