"""The suite tests this checkout, the same way on any machine."""
import pathlib
import subprocess
import sys

import autograd_lite

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_programs_the_tests_start_import_this_checkout():
    """The CLI and script tests run `python -m autograd_lite` in a new process: it must import
    the autograd_lite under test, not another installed copy (tests/conftest.py)."""
    here = pathlib.Path(autograd_lite.__file__).resolve()
    started = subprocess.run([sys.executable, "-c", "import autograd_lite; print(autograd_lite.__file__)"],
                             capture_output=True, text=True, timeout=60, cwd="/")
    assert started.returncode == 0, started.stderr
    assert pathlib.Path(started.stdout.strip()).resolve() == here
    assert here.parent.parent == ROOT
