"""A finding of `graphperf audit` and the ranked result of one audit (schema ``graphperf.audit/1``).

Guarantees: a finding's gain (`gain_s`, `gain_fraction`) is the difference of two projections that were run:
the report the audit started from and the report of the what-if that implements the recommendation
(`whatif` names it, in the CLI's words). A finding whose what-if cannot run, or that has no latency gain
(a model that does not fit, nodes without a cost rule), has ``gain_s = None`` and says why in `why`:
never a gain nobody computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["AUDIT_SCHEMA", "SEVERITIES", "Finding", "AuditResult", "severity_of_gain"]

AUDIT_SCHEMA = "graphperf.audit/1"
#: Severities, most severe first: `critical` (the projection is not a real run: the model does not fit),
#: `high` (a gain of 20% or more, or latency that is only a lower bound), `medium` (5% or more), `low`.
SEVERITIES = ("critical", "high", "medium", "low")


def severity_of_gain(fraction: float) -> str:
    """`high` for a measured gain of 20% of the latency or more, `medium` for 5%, else `low`."""
    return "high" if fraction >= 0.20 else "medium" if fraction >= 0.05 else "low"


@dataclass(frozen=True)
class Finding:
    """One finding: what (nodes, modules), why (mechanism and figures), the recommendation, and its gain.

    Attributes
    ----------
    check : str
        The check that found it (`graphperf.audit.CHECKS`).
    severity : str
        One of `SEVERITIES`.
    title : str
        One line: what was found.
    why : str
        The mechanism and the figures behind it.
    recommendation : str
        What to change.
    whatif : dict
        The what-if that implements the recommendation, as `graphperf whatif` flags (``{"pad": "50257=64"}``),
        or ``{}`` when none applies.
    nodes : tuple of str
        The graph nodes involved (up to 20 are listed in the table; all in JSON).
    before_s, after_s : float or None
        Projected latency before and after the what-if (None when no what-if ran).
    extra : dict
        Other before/after figures of the what-if (bytes, memory).
    """

    check: str
    severity: str
    title: str
    why: str
    recommendation: str
    whatif: dict[str, Any] = field(default_factory=dict)
    nodes: tuple[str, ...] = ()
    before_s: Optional[float] = None
    after_s: Optional[float] = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gain_s(self) -> Optional[float]:
        """Latency saved by the what-if, seconds (None when none ran)."""
        return None if self.before_s is None or self.after_s is None else self.before_s - self.after_s

    @property
    def gain_fraction(self) -> Optional[float]:
        """`gain_s` as a fraction of the latency before."""
        gain = self.gain_s
        return None if gain is None or not self.before_s else gain / self.before_s

    def to_dict(self, finding_id: str) -> dict[str, Any]:
        """The finding in the ``graphperf.audit/1`` document, under `finding_id` ("F1")."""
        return {"id": finding_id, "check": self.check, "severity": self.severity, "title": self.title,
                "why": self.why, "recommendation": self.recommendation, "whatif": self.whatif,
                "gain_s": self.gain_s, "gain_fraction": self.gain_fraction, "before_s": self.before_s,
                "after_s": self.after_s, "nodes": list(self.nodes), **self.extra}


@dataclass
class AuditResult:
    """The findings of one audit, ranked: by severity, then by gain (largest first), then by check name.

    Attributes
    ----------
    model : dict
        The audited model's description (the report's ``model`` section).
    target : Target
        The target it was projected on.
    mode : str
        The execution mode of the projections.
    latency_s : float
        The projected latency the gains are fractions of.
    findings : list of Finding
        Ranked.
    checks_run : list of str
        Every check that ran (a check that found nothing leaves no finding).
    """

    model: dict[str, Any]
    target: Any
    mode: str
    latency_s: float
    findings: list[Finding]
    checks_run: list[str]

    def __post_init__(self) -> None:
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        self.findings.sort(key=lambda f: (rank[f.severity], -(f.gain_s or 0.0), f.check, f.title))

    def ids(self) -> list[str]:
        """Finding ids in rank order: F1, F2, ..."""
        return [f"F{i + 1}" for i in range(len(self.findings))]

    def to_dict(self) -> dict[str, Any]:
        """The ``graphperf.audit/1`` document: model, target, mode, latency and the ranked findings."""
        from ..version import __version__

        return {"schema": AUDIT_SCHEMA, "tool": {"name": "graphperf", "version": __version__},
                "model": self.model, "target": self.target.name, "target_overrides": dict(self.target.overrides),
                "mode": self.mode, "latency_s": self.latency_s, "checks_run": self.checks_run,
                "findings": [f.to_dict(i) for f, i in zip(self.findings, self.ids())]}

    def to_json(self) -> str:
        """`to_dict` as JSON text, as ``graphperf audit --format json`` writes it."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"
