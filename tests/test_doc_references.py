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


# A path a comment or document cites (``dir/file.ext``) names a file of the repository:
# from the root, from the citing file's folder or one above it (``cl/matmul.cl`` in a
# package's README), or inside a ``src/`` layout (``needle_core/hookspecs.py`` for
# needle_core/src/needle_core/hookspecs.py).
CITED_PATH = re.compile(r"(?<![\w./$~-])((?:[\w-]+/)+[\w.-]+\.(?:py|md|h|cpp|cu|cuh|cl|toml|sh|ini|cfg|txt|json))\b")
# paths that are not the repository's on purpose
NOT_OURS = {
    "needle_backend_mini/plugin.py": "the example backend docs/writing-a-backend.md builds",
    "base_dir/train.txt": "a placeholder in a docstring",
    "pyopencl/__init__.py": "a fake module a test writes",
}


def _exists(cited: str, citing: Path) -> bool:
    folders = [p for p in citing.parents if p == ROOT or ROOT in p.parents]
    folders += [p for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for folder in folders:
        if (folder / cited).is_file() or any(folder.glob(f"src/{cited}")) or any(folder.glob(f"src/*/{cited}")):
            return True
    return False


def test_cited_repository_paths_exist():
    out = subprocess.run(["git", "ls-files", "*.sh"], cwd=ROOT, capture_output=True, text=True)
    scripts = [ROOT / p for p in out.stdout.splitlines()] if out.returncode == 0 else []
    missing = []
    for path in _tracked() + scripts:
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in CITED_PATH.finditer(text):
            cited = match.group(1)
            line_start = text.rfind("\n", 0, match.start()) + 1
            if text.startswith("#include", line_start) or cited in NOT_OURS or _exists(cited, path):
                continue
            line = text.count("\n", 0, match.start()) + 1
            missing.append(f"{path.relative_to(ROOT)}:{line} cites {cited}")
    assert not missing, "cited files that the repository lacks:\n" + "\n".join(missing)
