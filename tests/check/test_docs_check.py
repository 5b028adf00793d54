"""docs/check.md stays true: its Python runs, and its printed reports are what the code prints
(the same words, verdicts and numbers to their printed precision: report_text.py; round-off is
printed as a bound, so the page holds on any CPU and BLAS)."""

import contextlib
import io
import pathlib
import re
import warnings

import pytest

from autograd_lite.cli import main
from report_text import assert_lines_appear, assert_same_report

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "check.md"


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_python_examples_run_and_print_what_the_page_shows():
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for code in blocks("python"):
            exec(compile(code, str(DOC), "exec"), namespace)
    printed = out.getvalue()
    checked = 0
    for shown in blocks("text"):
        if shown.startswith(("gradcheck:", "sentinel:", "compare_derivation:")):
            assert_lines_appear(shown.strip("\n").split("\n"), printed)
            checked += 1
    assert checked == 3


@pytest.mark.parametrize("command", [
    "autograd-lite check --layers 3,4,1 --activations sigmoid,sigmoid --m 5",
])
def test_the_real_report_is_what_the_command_prints(command, capsys):
    shown = next(b for b in blocks("text") if b.startswith(f"$ {command}\n"))
    status = main(command.split()[1:])
    assert status == 0
    assert_same_report(shown.split("\n", 1)[1], capsys.readouterr().out)


def test_the_failure_excerpts_are_lines_the_command_prints(capsys):
    excerpts = 0
    for shown in blocks("text"):
        if not shown.startswith("$ autograd-lite check") or "\n...\n" not in shown:
            continue
        main(shown.split("\n", 1)[0].split()[2:])
        printed = capsys.readouterr().out
        lines = [line for line in shown.split("\n")[1:] if line and line != "..."]
        assert_lines_appear([line for line in lines if not line.endswith(" ...")], printed)
        # a line cut short with "..." is the start of a printed line
        assert_lines_appear([line[:-len(" ...")] for line in lines if line.endswith(" ...")],
                            printed, prefix=True)
        excerpts += 1
    assert excerpts == 2


def test_the_fused_table_rows_are_real():
    from autograd_lite import check
    table = str(check.fused_vs_composed())
    shown = next(b for b in blocks("text") if b.lstrip().startswith("z  y"))
    assert_lines_appear(shown.strip("\n").split("\n"), table)
