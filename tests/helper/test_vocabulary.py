"""One vocabulary: every alert kind and threshold is defined once (model.py, thresholds.py);
the docs' tables are derived from them, and no helper module spells a kind as a bare string."""

from __future__ import annotations

import ast
from pathlib import Path

from plex_security_helper.model import KIND_INFO, AlertKind
from plex_security_helper.thresholds import THRESHOLDS

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "helper" / "plex_security_helper"
DOC = ROOT / "docs" / "detection.md"
# Words that are kinds' values and also ordinary names of something else.
ALLOWED = {
    ("api/bans.py", "unbanned"),
    ("api/openapi.py", "unbanned"),
    ("firewall/nft.py", "banned"),
    ("cli.py", "scan"),  # the command
}


def kinds_table() -> str:
    rows = ["| kind | verdict | default score | meaning |", "|---|---|---|---|"]
    rows += [f"| `{kind}` | {info.verdict} | {info.score} | {info.label} |" for kind, info in KIND_INFO.items()]
    return "\n".join(rows)


def thresholds_table() -> str:
    rows = ["| key | default | range | meaning |", "|---|---|---|---|"]
    rows += [f"| `{name}` | `{t.default}` | {t.low}–{t.high} | {t.help} |" for name, t in THRESHOLDS.items()]
    return "\n".join(rows)


def block(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start, end = f"<!-- {name} -->\n", f"\n<!-- /{name} -->"
    assert start in text and end in text, f"docs/detection.md has no {name} block"
    return text.split(start, 1)[1].split(end, 1)[0]


def test_every_kind_has_its_meaning() -> None:
    assert set(KIND_INFO) == set(AlertKind)


def test_the_docs_tables_are_the_models() -> None:
    assert block("kinds") == kinds_table()
    assert block("thresholds") == thresholds_table()


def test_no_helper_module_spells_a_kind() -> None:
    words = {str(kind) for kind in AlertKind}
    found = []
    for path in HELPER.rglob("*.py"):
        rel = path.relative_to(HELPER).as_posix()
        if rel == "model.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in words and (rel, node.value) not in ALLOWED:
                found.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not found, found
