"""Every document the code and docs cite is in the repository (a user's clone has nothing beside it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CITED_DOC = re.compile(r"\bdocs/([\w.-]+\.md)\b")
OUTSIDE = re.compile(r"\.\./shared\b|(?<![\w/])(?:API|DESIGN)\.md\b")
SOURCES = ("*.py", "*.cpp", "*.h", "*.cu", "*.cuh", "*.cl", "*.md", "*.toml", "*.cfg", "*.ini")


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", *SOURCES], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


def test_cited_docs_exist():
    missing = []
    for path in _tracked():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITED_DOC.finditer(text):
            if not (ROOT / "docs" / match.group(1)).is_file():
                line = text.count("\n", 0, match.start()) + 1
                missing.append(f"{path.relative_to(ROOT)}:{line} cites docs/{match.group(1)}")
    assert not missing, "cited documents that the repository lacks:\n" + "\n".join(missing)


def test_nothing_cites_files_outside_the_repository():
    this = Path(__file__).resolve()
    hits = []
    for path in _tracked():
        if path.resolve() == this:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in OUTSIDE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            hits.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
    assert not hits, "references to files a user's clone does not have:\n" + "\n".join(hits)
