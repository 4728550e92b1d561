"""Notebook displays (``_repr_html_``) of the core objects, built from :mod:`safemodel._html`.

Kept apart from the classes so they stay about behaviour; each class's
``_repr_html_`` calls one function here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safemodel import _html as h
from safemodel._text import listing
from safemodel.errors import failures_html

if TYPE_CHECKING:
    from safemodel.core.bundle import ModelBundle
    from safemodel.core.contract import Contract
    from safemodel.core.golden import VerificationReport
    from safemodel.core.policy import Policy
    from safemodel.core.report import PolicyReport

__all__ = ["bundle_html", "contract_html", "policy_html", "policy_report_html",
           "verification_html"]

_ROWS = 50  # longest table a display shows; the rest is counted


def contract_html(contract: Contract) -> str:
    """One row per column: kind, dtype, nullable, allowed categories or range."""
    rows = []
    for c in contract.columns[:_ROWS]:
        if c.categories is not None:
            allowed = listing(list(c.categories), limit=6)
        elif c.minimum is not None or c.maximum is not None:
            allowed = f"{h.cell(c.minimum)} to {h.cell(c.maximum)} (seen)"
        else:
            allowed = ""
        rows.append((c.name, c.kind, c.dtype, c.nullable, allowed))
    return h.box(f"Contract: {len(contract.columns)} column(s)",
                 h.table(["column", "kind", "dtype", "nullable", "allowed values"], rows),
                 _more(len(contract.columns)))


def policy_html(policy: Policy) -> str:
    """The three settings, then the per-column overrides."""
    parts = [h.pairs([("unseen_category", policy.unseen_category),
                      ("missing", policy.missing),
                      ("extra_columns", policy.extra_columns)])]
    if policy.columns:
        parts.append(h.table(
            ["column", "unseen_category", "missing"],
            [(name, cp.unseen_category or "(policy)", cp.missing or "(policy)")
             for name, cp in policy.columns.items()]))
    return h.box("Policy", *parts)


def policy_report_html(report: PolicyReport) -> str:
    """Actions per column, and the rejected rows with their failures."""
    parts = [f"<div>{report.rows} row(s); {len(report.rejected_rows)} rejected.</div>"]
    if report.actions:
        parts.append(h.table(["column", "action", "rows"],
                             [(a.column, a.action, a.count) for a in report.actions],
                             numeric=[2]))
    if report.rejected:
        parts.append(failures_html(report.rejected, _ROWS))
    status = "warn" if report.changed else "ok"
    return h.box("Policy report", *parts, status=status)


def verification_html(report: VerificationReport) -> str:
    """The verdict, then per method what differs, the policy changes, the packages."""
    parts = []
    rows = [(m["method"], m.get("rows_differing", "-"), m.get("rows_total", "-"),
             m.get("max_abs_diff"), m.get("max_rel_diff"), m.get("detail", ""))
            for m in report.mismatches]
    if rows:
        parts.append(h.table(["method", "rows differing", "rows", "max abs diff",
                              "max rel diff", "detail"], rows, numeric=[1, 2, 3, 4]))
    if report.policy_diff:
        parts.append(h.table(["policy behaviour that changed"],
                             [(d,) for d in report.policy_diff]))
    if report.environment_diff:
        parts.append(h.table(["package", "at build", "here"],
                             [(k, a or "absent", b or "absent")
                              for k, (a, b) in sorted(report.environment_diff.items())]))
    elif not report.ok:
        parts.append("<div>No recorded package version changed.</div>")
    verdict = "golden outputs reproduce" if report.ok else "golden outputs do not reproduce"
    return h.box(f"Verification of {report.name or 'bundle'}: {verdict}", *parts,
                 status="ok" if report.ok else "fail")


def bundle_html(bundle: ModelBundle) -> str:
    """Identity, then the contract and policy as tables."""
    summary = h.pairs([
        ("estimator", type(bundle.estimator).__name__),
        ("methods", ", ".join(bundle.methods)),
        ("golden rows", len(bundle.golden.inputs)),
        ("fingerprint", bundle.fingerprint[:16] + "\u2026"),
        ("reference profile", bundle.profile is not None),
        *((str(k), _short(v)) for k, v in list(bundle.metadata.items())[:8]),
    ])
    return h.box(f"ModelBundle {bundle.name}=={bundle.version}", summary,
                 contract_html(bundle.contract), policy_html(bundle.policy))


def _more(n: int) -> str:
    return f"<div>... and {n - _ROWS} more</div>" if n > _ROWS else ""


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "\u2026"
