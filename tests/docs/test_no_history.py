"""The code, tests and docs say what is; the git log says what was. No issue numbers, no "no
longer", no "redesign" in the package, the tests, the docs (the seed's derivation aside), the
README, the examples, the benchmarks or the scripts."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLACES = ("autograd_lite", "tests", "docs", "examples", "benchmarks", "scripts")
HISTORY = re.compile(r"\bissues? +\d|no longer|redesign|before the re(?:write|factor)", re.IGNORECASE)
SEED = ROOT / "docs" / "seed"  # the derivation the project grows from, kept as it was given
TEXT = {".py", ".md", ".txt", ".toml", ".ipynb", ".html", ".cfg"}


def _files():
    yield ROOT / "README.md"
    for place in PLACES:
        for path in sorted((ROOT / place).rglob("*")):
            if (path.is_file() and path.suffix in TEXT and SEED not in path.parents
                    and path != pathlib.Path(__file__).resolve()):
                yield path


def test_files_say_what_is_not_what_was():
    found = []
    for path in _files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if HISTORY.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert found == [], "\n".join(found)


def test_the_check_finds_what_it_looks_for():
    for line in ("see issue 12", "Issues 10 and 11", "it no longer blocks", "the core redesign"):
        assert HISTORY.search(line), line
    assert not HISTORY.search("eq 12, the issue of scale")
