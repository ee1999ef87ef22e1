"""The remediation script: commented, quoted shell commands for the owner to review and run.

The helper never runs it. Commands come only from findings that carry an exact fix (``chmod``
of a known path, ``docker update`` of a named container); everything else is explained in
comments. Paths and names were quoted with ``shlex.quote`` when the finding was made.

The owner runs it later, as root, on paths the plex account can change meanwhile: a symlink
planted in place of Preferences.xml would have ``chmod`` change its target. So every ``chmod``
is guarded in the script itself (:func:`guarded_chmod`): it acts only if the path and each of
its folders are still no symlink (those that were not one at the audit), the path is still a
regular file (or folder) and still has the owner the audit saw.
"""

from __future__ import annotations

import shlex
import stat
import time
from pathlib import Path

from .findings import SEVERITY_ORDER, AuditReport


def guarded_chmod(mode: str, path: Path) -> tuple[str, ...]:
    """Script lines that ``chmod`` *path* only if it is still the file the audit saw."""
    q = shlex.quote(str(path))
    try:
        st = path.lstat()
    except OSError:
        return (f"# {q} is gone: nothing to change",)
    if stat.S_ISLNK(st.st_mode):
        return (f"# {q} is a symlink: not changed by this script (check what it points to)",)
    kind = "-d" if stat.S_ISDIR(st.st_mode) else "-f"
    if kind == "-f" and not stat.S_ISREG(st.st_mode):
        return (f"# {q} is not a regular file: not changed by this script",)
    folders = [a for a in reversed(path.parents) if a != Path(a.anchor) and not a.is_symlink()]
    tests = [f"[ ! -L {shlex.quote(str(a))} ]" for a in folders]
    tests += [f"[ ! -L {q} ]", f"[ {kind} {q} ]", f'[ "$(stat -c %u {q})" = {st.st_uid} ]']
    skipped = shlex.quote(f"skipped: {path} is no longer what the audit saw (a symlink, or another owner)")
    return (
        "if " + " \\\n   && ".join(tests) + "; then",
        f"  chmod {mode} -- {q}",
        "else",
        f"  echo {skipped} >&2",
        "fi",
    )


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
