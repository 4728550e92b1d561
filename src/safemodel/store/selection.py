"""Which version a request selects: an exact version, a specifier, an alias, or none.

Pure functions over the versions and aliases a name has; the store reads those from
disk and hands them in, so the rules can be tested without files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from safemodel.errors import BundleNotFoundError, StoreError
from safemodel.store.layout import is_alias

__all__ = ["Selector", "exact", "select"]

Selector = str | Version | None
"""An exact version, a specifier (``">=1.2,<2"``), an alias, or ``None``."""


def select(
    name: str,
    selector: Selector,
    versions: Sequence[Version],
    aliases: Callable[[], Mapping[str, tuple[Version, str]]],
) -> tuple[Version, str | None]:
    """The version ``selector`` picks among ``versions`` (sorted), and the fingerprint an
    alias promised for it (``None`` unless ``selector`` is an alias).

    ``None`` selects the highest release; a specifier its highest match (pre-releases
    only when it names one); ``aliases`` is called only when ``selector`` is an alias.

    Raises
    ------
    BundleNotFoundError
        When nothing matches; the message and ``known`` list what is there.
    StoreError
        When ``selector`` is neither a version, a specifier nor an alias.
    """
    if selector is None:
        releases = [v for v in versions if not v.is_prerelease]
        if not releases:
            raise BundleNotFoundError(
                f"{name!r} has only pre-releases {_strs(versions)}; ask for one by version "
                "or with a specifier such as '>=2.0rc1'.", name=name, known=_strs(versions))
        return releases[-1], None
    if isinstance(selector, Version):
        return exact(name, selector, versions), None
    text = str(selector).strip()
    try:
        return exact(name, Version(text), versions), None
    except InvalidVersion:
        pass
    if is_alias(text):
        known = aliases()
        if text not in known:
            raise BundleNotFoundError(
                f"{name!r} has no alias {text!r}; aliases: {sorted(known)}. Set one with "
                f"promote({name!r}, VERSION, alias={text!r}).",
                name=name, alias=text, known=sorted(known))
        return known[text]
    try:
        spec = SpecifierSet(text)
    except InvalidSpecifier:
        raise StoreError(
            f"{selector!r} is neither a version ('1.2.0'), a specifier ('>=1.2,<2') nor "
            "an alias ('production').", name=name, version=text,
        ) from None
    matches = list(spec.filter(versions, prereleases=bool(spec.prereleases)))
    if not matches:
        raise BundleNotFoundError(f"No version of {name!r} matches {text!r}; versions: "
                                  f"{_strs(versions)}.", name=name, version=text,
                                  known=_strs(versions))
    return max(matches), None


def exact(name: str, wanted: Version, versions: Iterable[Version]) -> Version:
    """The one of ``versions`` equal to ``wanted`` ("1.0" equals "1.0.0").

    Raises
    ------
    BundleNotFoundError
        When there is none.
    """
    versions = list(versions)
    for v in versions:
        if v == wanted:
            return v
    raise BundleNotFoundError(f"{name!r} has no version {str(wanted)!r}; versions: "
                              f"{_strs(versions)}.", name=name, version=str(wanted),
                              known=_strs(versions))


def _strs(versions: Iterable[Version]) -> list[str]:
    return [str(v) for v in versions]
