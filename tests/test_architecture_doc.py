"""docs/architecture.md is the map of the code: every path it names exists, and the README links it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"

# a backticked repository path: a top-level folder, then a file or folder name
PATH = re.compile(r"`((?:constrained|engine|tasks|finetune|tests|docs|benchmarks|examples)/[\w./-]*"
                  r"|pyproject\.toml|README\.md|BENCHMARKS\.md)`")


def named_paths() -> list[str]:
    return sorted(set(PATH.findall(DOC.read_text())))


def test_every_path_the_map_names_exists():
    paths = named_paths()
    assert len(paths) > 30  # the regex finds the map's paths
    missing = [p for p in paths if "NAME" not in p and not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_the_readme_links_the_map():
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text()
