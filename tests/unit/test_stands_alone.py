"""The repository stands alone: nothing in it reads a file from outside the clone.

A clone into an empty folder must pass `make test`, so no test, default or demo may point at a sibling
folder or at a path of one machine.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"""\.\./shared|["']\.\.["']\s*/\s*["']shared|/work/|/root/|/home/\w+/""")
PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
CHECKED = (".py", ".toml", ".cfg", ".ini", ".sh", ".yml", ".yaml", ".json", ".md", ".sql", "Makefile", ".txt")


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split("\n")
    return [ROOT / name for name in listed if name.endswith(CHECKED) and (ROOT / name).is_file()]


def points_outside(path: Path) -> list[str]:
    """Lines of `path` that name a place outside the repository."""
    found = []
    depth = len(path.relative_to(ROOT).parts) - 1  # parents[depth] is the repository root
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if OUTSIDE.search(line):
            found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
        for match in PARENTS.finditer(line):
            if int(match.group(1)) > depth:
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_file_points_outside_the_repository() -> None:
    files = tracked_files()
    assert any(f.name == "test_replay.py" for f in files)  # the listing really covers tests/
    found = [line for f in files if f != Path(__file__).resolve() for line in points_outside(f)]
    assert found == []


def test_the_check_sees_a_path_outside(tmp_path: Path) -> None:
    probe = ROOT / "tests" / "unit" / "_probe_outside.py"
    probe.write_text('SAMPLE = Path(__file__).parents[2] / ".." / "shared" / "data.csv"\n'
                     'OTHER = Path(__file__).parents[3] / "data.csv"\n')
    try:
        assert len(points_outside(probe)) == 2
    finally:
        probe.unlink()


def test_the_retail_sample_is_in_the_repository() -> None:
    sample = ROOT / "tests" / "data" / "online_retail_ii_sample"
    assert (sample / "online_retail_II_sample.csv.gz").stat().st_size > 700_000
    assert "CC BY 4.0" in (sample / "README.md").read_text() and (sample / "LICENSE.md").is_file()
