"""The core stays readable: the lines that run for the README's step are counted, the core holds
no reference-count probes or finalizers, `import *` shadows no builtin, and every function the
README lists as ag.f(t) exists."""
import builtins
import pathlib
import re
import subprocess
import sys

import autograd_lite as ag

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORE = sorted(str(path.relative_to(ROOT / "autograd_lite"))
              for folder in ("core", "ops") for path in (ROOT / "autograd_lite" / folder).glob("*.py"))


def _reading_path_table():
    """scripts/reading_path.py's table, run as the docs say, in a fresh interpreter: the
    README's step in a new session (another test's live graphs would add lines that run)."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "reading_path.py")],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    rows = [line.split() for line in out.strip().splitlines()]
    return [(name.removeprefix("autograd_lite/"), int(n)) for n, name in rows[:-1]], int(rows[-1][0])


def test_the_lines_the_readme_step_runs_stay_few_and_documented():
    rows, total = _reading_path_table()
    assert [name for name, _ in rows[:2]] == ["core/tensor.py", "core/graph.py"]
    assert all(name.startswith(("core/", "ops/", "backend.py")) for name, _ in rows), rows
    assert total <= 161, rows
    documented = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert f"**in all** | **{total}**" in documented, "update the table in docs/architecture.md"


def test_the_core_has_no_reference_count_probes_finalizers_or_timings():
    for name in CORE:
        text = (ROOT / "autograd_lite" / name).read_text(encoding="utf-8")
        for forbidden in ("getrefcount", "__del__", "weakref.finalize", "ReleasedValue"):
            assert forbidden not in text, f"{name}: {forbidden}"
        # comments say why, not how many microseconds
        assert not re.search(r"#.*\d\s*(us|µs|ns)\b", text), f"{name}: a timing in a comment"


def test_import_star_shadows_no_builtin():
    shadowed = [name for name in ag.__all__ if hasattr(builtins, name)]
    assert shadowed == []


def test_every_function_the_readme_lists_as_ag_f_exists():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines()
            if line.startswith("| functions and methods") or line.startswith("| more ops")]
    assert len(rows) == 2
    names = set()
    for row in rows:
        for code in re.findall(r"`([^`]*)`", row.split("|")[2]):
            names.update(word for word in code.split() if re.fullmatch(r"[a-z_]+", word))
    assert len(names) > 30
    missing = sorted(name for name in names if not callable(getattr(ag, name, None)))
    assert missing == []
