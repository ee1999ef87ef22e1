"""The remediation script: commented, quoted shell commands for the owner to review and run.

The helper never runs it. Commands come only from findings that carry an exact fix (``chmod``
of a known path, ``docker update`` of a named container); everything else is explained in
comments. Paths and names were quoted with ``shlex.quote`` when the finding was made.
"""

from __future__ import annotations

import time

from .findings import SEVERITY_ORDER, AuditReport


def _comment(text: str) -> list[str]:
    # Newlines in evidence (attacker-influenced file names, container names) stay in comments.
    return [f"# {line}" for line in " ".join(text.split()).split("\n")]


def render(report: AuditReport) -> str:
    """A POSIX sh script; ``bash -n`` and ``shellcheck`` accept it."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(report.finished or report.started))
    lines = [
        "#!/bin/sh",
        "# Paths are single-quoted on purpose: a $ or a backquote in them stays literal.",
        "# shellcheck disable=SC2016",
        f"# plex-security-helper remediation script, audit of {stamp}.",
        "# Review every command before running it; the helper never runs this script.",
        f"# Security score {report.score()}/100.",
        "set -eu",
        "",
    ]
    open_findings = [f for f in report.findings if f.accepted is None]
    for finding in sorted(open_findings, key=lambda f: (SEVERITY_ORDER.index(f.severity), f.id, f.subject)):
        lines += _comment(f"[{finding.severity.value}] {finding.key}: {finding.title}")
        lines += _comment(f"Evidence: {finding.evidence}")
        lines += _comment(f"Fix: {finding.remediation}")
        lines += list(finding.fix) if finding.fix else ["# (no command: this one is fixed in a settings page)"]
        lines.append("")
    if not open_findings:
        lines.append("# Nothing to fix.")
    return "\n".join(lines) + "\n"
