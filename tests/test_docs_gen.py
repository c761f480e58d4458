"""The generated trtexec ⇄ trtbuild flag table, and the README copy of it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from trtbuild import docs_gen
from trtbuild.docs_gen import END, START, MarkersMissing, region_is_current, render_flag_table, replace_region
from trtbuild.spec import LEGACY, OPTIONS, UNSUPPORTED

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def table_rows(markdown: str) -> list[list[str]]:
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]  # split on unescaped pipes only
            rows.append([c.strip() for c in cells])
    return rows


def test_every_option_has_a_row_with_its_spellings_and_versions() -> None:
    rows = {r[0]: r for r in table_rows(render_flag_table()) if len(r) == 4}
    for opt in OPTIONS:
        row = rows[f"`--{opt.name}`"]
        for flag in opt.flags:
            assert f"`{flag}`" in row[1]
    assert rows["`--minShapes`"][1] == "`--min`, `--minShapes`"
    assert rows["`--fp16`"][2] == "8.x, 10.x"
    assert rows["`--includeDataTransfers`"][2] == "11.x"
    assert rows["`--saveEngine`"][1] == "`--output`, `--saveEngine`"


def test_unsupported_and_legacy_flags_are_listed_with_their_reasons() -> None:
    rows = {r[0]: r[1] for r in table_rows(render_flag_table()) if len(r) == 2}
    for name, why in UNSUPPORTED.items():
        assert rows[f"`--{name}`"] == " ".join(why.split()).replace("|", "\\|")
    for name in LEGACY:
        assert f"`--{name}`" in rows
    assert "--memPoolSize=workspace:N" in rows["`--workspace`"]


def test_pipes_in_text_cannot_break_the_tables() -> None:
    for line in render_flag_table().splitlines():
        if line.startswith("|"):
            assert len(re.findall(r"(?<!\\)\|", line)) in (3, 5), line
    assert "none\\|obey\\|prefer" in render_flag_table()


def test_replace_region_keeps_the_rest_and_is_idempotent() -> None:
    text = f"# Title\n\nbefore\n\n{START}\nold table\n{END}\n\nafter\n"
    once = replace_region(text, "| new |\n")
    assert once == f"# Title\n\nbefore\n\n{START}\n| new |\n{END}\n\nafter\n"
    assert replace_region(once, "| new |\n") == once
    assert region_is_current(once, "| new |\n") and not region_is_current(text, "| new |\n")
    with pytest.raises(MarkersMissing):
        replace_region("no markers here", "x")
    with pytest.raises(MarkersMissing):
        replace_region(f"{END}\n{START}\n", "x")


def test_write_and_check_on_a_temp_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "README.md"
    doc.write_text(f"intro\n{START}\n{END}\noutro\n")
    doc.chmod(0o644)
    assert docs_gen.main(["--check", str(doc)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docs_gen.main(["--write", str(doc)]) == 0
    assert docs_gen.main(["--check", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith(f"intro\n{START}\n<!-- generated") and text.endswith(f"{END}\noutro\n")
    assert "| `--memPoolSize` |" in text
    assert doc.stat().st_mode & 0o777 == 0o644
    (tmp_path / "plain.md").write_text("nothing to see\n")
    assert docs_gen.main(["--check", str(tmp_path / "plain.md")]) == 2


def test_module_runs_as_a_script(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "trtbuild.docs_gen"], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0
    assert result.stdout == render_flag_table()


def test_readme_flag_table_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        pytest.skip(f"README.md has no {START} ... {END} region yet; the flag table is not published there.")
    assert region_is_current(text), f"README.md's trtexec flag table is stale: run `{docs_gen.REGENERATE}`."
