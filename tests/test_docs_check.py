"""docs/check.md stays true: its Python runs, and its printed reports are what the code prints."""

import contextlib
import io
import pathlib
import re
import warnings

import pytest

from autograd_lite.cli import main

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "check.md"


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def test_the_python_examples_run_and_print_what_the_page_shows():
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for code in blocks("python"):
            exec(compile(code, str(DOC), "exec"), namespace)
    printed = out.getvalue()
    for shown in blocks("text"):
        if shown.startswith(("gradcheck:", "sentinel:")):
            assert shown.strip() in printed


@pytest.mark.parametrize("command", [
    "autograd-lite check --layers 3,4,1 --activations sigmoid,sigmoid --m 5",
])
def test_the_real_report_is_what_the_command_prints(command, capsys):
    shown = next(b for b in blocks("text") if b.startswith(f"$ {command}\n"))
    status = main(command.split()[1:])
    assert status == 0
    assert capsys.readouterr().out == shown.split("\n", 1)[1]


def test_the_failure_excerpts_are_lines_the_command_prints(capsys):
    for shown in blocks("text"):
        if not shown.startswith("$ autograd-lite check") or "\n...\n" not in shown:
            continue
        main(shown.split("\n", 1)[0].split()[2:])
        printed = capsys.readouterr().out
        for line in shown.split("\n")[1:]:
            if line and line != "...":
                assert line.rstrip(". ") in printed, line


def test_the_fused_table_rows_are_real():
    from autograd_lite import check
    table = str(check.fused_vs_composed())
    shown = next(b for b in blocks("text") if b.lstrip().startswith("z  y"))
    for line in shown.strip("\n").split("\n"):
        assert line in table, line
