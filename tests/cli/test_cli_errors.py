"""Every error path of every command, against the exit-status table of docs/cli.md: one
line on stderr, the documented status, no traceback, outputs checked before any
work, messages that name the file asked for (never a temporary file) and the CLI's options
(never a Python argument)."""
import errno
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import autograd_lite.cli.train as cli_train
from autograd_lite import nn
from autograd_lite.cli import MAX_NUMBERS, main
from autograd_lite.io import WriteError

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_line(err):
    assert err.count("\n") == 1 and err.startswith("autograd-lite: error: "), err
    assert "Traceback" not in err and ".tmp" not in err, err
    return err


@pytest.fixture
def no_training(monkeypatch):
    """Make any training or drawing fail the test: the refusal must come before any work."""
    monkeypatch.setattr(cli_train, "fit", lambda *a, **k: pytest.fail("trained before refusing"))
    monkeypatch.setattr("autograd_lite.cli.graph.draw",
                        lambda *a, **k: pytest.fail("drew before refusing"))


# --- 2: bad options, every command --------------------------------------------------------------

@pytest.mark.parametrize("command", ["check", "graph", "train"])
@pytest.mark.parametrize("argv, words", [
    (["--seed", "-1"], "--seed must be a whole number >= 0, got -1"),
    (["--seed", "x"], "--seed"),
    (["--m", "100000000000"], f"at most {MAX_NUMBERS:,}"),
    (["--layers", "2,100000,100000,1"], f"at most {MAX_NUMBERS:,}"),
])
def test_bad_network_options_exit_2_in_one_line(command, argv, words, capsys):
    """--seed -1 and --m 100000000000 printed numpy tracebacks (ValueError, MemoryError)."""
    status, out, err = run(capsys, command, *argv)
    assert status == 2 and out == ""
    assert words in one_line(err)


def test_train_offers_only_the_losses_it_accepts(capsys):
    """--help offered mse and cross-entropy, which train then refused."""
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    words = " ".join(capsys.readouterr().out.split())
    assert "--loss {log-loss}" in words and "mse" not in words.split("--loss", 1)[1].split("--", 1)[0]
    status, _, err = run(capsys, "train", "--loss", "mse")
    assert status == 2 and "invalid choice: 'mse'" in one_line(err)
    # the other commands still offer and accept all three
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    assert "{log-loss,mse,cross-entropy}" in capsys.readouterr().out


# --- 2: outputs that cannot be written, checked before any work ---------------------------------

def unwritable_outputs(tmp_path):
    (tmp_path / "file").write_text("")
    return [(tmp_path / "missing" / "out", "the folder '{}' does not exist".format(tmp_path / "missing")),
            (tmp_path / "file" / "out", "is not a folder"),
            (tmp_path / "folder.out", "it is a directory, not a regular file")]


@pytest.mark.parametrize("command, option, suffix", [
    ("graph", "--output", ".svg"), ("graph", "--output", ".dot"),
    ("train", "--save", ".npz"), ("train", "--save-optimizer", ".npz")])
def test_an_output_that_cannot_be_written_exits_2_before_any_work(command, option, suffix, tmp_path,
                                                                  capsys, no_training):
    """graph exited 1 after drawing, train exited 2 after training the whole run."""
    for path, words in unwritable_outputs(tmp_path):
        path = path.with_suffix(suffix)
        if "directory" in words:
            path.mkdir()
        status, out, err = run(capsys, command, option, str(path))
        assert status == 2 and out == "", err
        assert option in one_line(err) and words in err and repr(str(path)) in err


@pytest.mark.parametrize("command, option", [("graph", "--output"), ("train", "--save")])
def test_a_folder_without_permission_names_the_file_not_the_temporary(command, option, tmp_path,
                                                                      capsys, monkeypatch,
                                                                      no_training):
    """The message named '.x.svg.6f7jf2zt.tmp'. Root may create files anywhere, so mkstemp
    is made to fail as it does for other users."""
    def denied(*args, dir=None, prefix="", **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied",
                              os.path.join(dir, f"{prefix}6f7jf2zt.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    path = tmp_path / ("x.svg" if command == "graph" else "x.npz")
    status, _, err = run(capsys, command, option, str(path))
    assert status == 2 and "6f7jf2zt" not in one_line(err)
    assert f"cannot write {str(path)!r}: permission denied" in err


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="no /sys here")
def test_a_read_only_system_folder_is_refused_for_real(capsys, no_training):
    try:  # /sys refuses new files, root included, on Linux; skip where it does not
        handle, name = tempfile.mkstemp(dir="/sys")
    except OSError:
        pass
    else:
        os.close(handle)
        os.unlink(name)
        pytest.skip("/sys accepts new files here")
    status, _, err = run(capsys, "train", "--save", "/sys/model.npz")
    assert status == 2 and "cannot write '/sys/model.npz'" in one_line(err)


def test_save_and_save_optimizer_on_one_file_are_refused(tmp_path, capsys, no_training):
    path = tmp_path / "both.npz"
    status, _, err = run(capsys, "train", "--save", str(path), "--save-optimizer",
                         str(tmp_path / "." / "both.npz"))
    assert status == 2 and "name the same file" in one_line(err)


# --- 2: inputs that cannot be loaded --------------------------------------------------------------

def test_inputs_are_refused_with_the_real_reason(tmp_path, capsys, no_training):
    """A directory or /dev/zero was reported as 'no such file'; a truncated file printed a
    zipfile.BadZipFile traceback."""
    good = tmp_path / "model.npz"
    nn.MLP([2, 8, 1], ["sigmoid", "identity"]).save(good)
    truncated = tmp_path / "t.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    cases = [(tmp_path / "absent.npz", "no such file"), (tmp_path, "it is a directory"),
             (truncated, "truncated")]
    if os.path.exists("/dev/zero"):
        cases.append(("/dev/zero", "it is a device"))
    for option in ("--load", "--load-optimizer"):
        for path, words in cases:
            status, out, err = run(capsys, "train", option, str(path))
            assert status == 2 and out == ""
            assert option in one_line(err) and words in err and str(path) in err


def test_a_nan_model_is_refused_in_the_cli_s_words(tmp_path, capsys, no_training):
    model = nn.MLP([2, 8, 1], ["sigmoid", "identity"])
    W = model.layers[0].W.data.copy()
    W[0, 0] = np.nan
    model.layers[0].W.data = W
    model.save(tmp_path / "nan.npz")
    status, _, err = run(capsys, "train", "--load", str(tmp_path / "nan.npz"))
    assert status == 2 and "layers.0.W (W[1]) has 1 nan of its 16 entries" in one_line(err)
    assert "allow_nonfinite" not in err   # a Python argument, not an option of this command


# --- 1: the command ran and failed ----------------------------------------------------------------

def test_a_save_that_fails_after_training_exits_1_naming_the_file(tmp_path, capsys, monkeypatch):
    path = tmp_path / "model.npz"

    def full(self, target):
        raise WriteError(f"cannot write {os.fspath(target)!r}: no space left on the device",
                         target, errno.ENOSPC)

    monkeypatch.setattr(nn.Module, "save", full)
    status, out, err = run(capsys, "train", "--epochs", "2", "--save", str(path))
    assert status == 1 and "final:" in out
    assert "--save: cannot write" in one_line(err) and "no space left" in err


def test_a_picture_that_cannot_be_written_at_the_end_exits_1(tmp_path, capsys, monkeypatch):
    def full(path, write):
        raise WriteError(f"cannot write {os.fspath(path)!r}: no space left on the device", path,
                         errno.ENOSPC)

    monkeypatch.setattr("autograd_lite.viz.picture.write_atomically", full)
    status, _, err = run(capsys, "graph", "--output", str(tmp_path / "x.dot"))
    assert status == 1 and "--output: cannot write" in one_line(err)


def test_graphviz_missing_exits_1_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    status, _, err = run(capsys, "graph", "--output", str(tmp_path / "x.svg"))
    assert status == 1 and "apt-get install graphviz" in one_line(err)


def test_out_of_memory_is_one_line_exit_1(capsys, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(cli_train, "make_data", no_memory)
    status, _, err = run(capsys, "train")
    assert status == 1 and "out of memory" in one_line(err)


def test_an_interrupt_is_one_line_exit_130_and_writes_nothing(tmp_path, capsys, monkeypatch):
    """Ctrl-C during a long run printed a KeyboardInterrupt traceback."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_train, "fit", interrupted)
    status, _, err = run(capsys, "train", "--save", str(tmp_path / "model.npz"))
    assert status == 130 and "interrupted" in one_line(err)
    assert os.listdir(tmp_path) == []


# --- the size policy's advice in option words ---------------------------------------------------

def test_the_size_hint_names_the_cli_options(capsys):
    """The note said 'max_nodes=400' and 'layers_only=True', draw()'s Python arguments."""
    status, out, err = run(capsys, "graph", "--layers", "3,4,4,4,4,4,4,4,1", "--max-nodes", "5")
    assert status == 0
    assert "more than --max-nodes 5" in err and "--layers-only" in err
    assert "raise --max-nodes (0: no limit)" in out       # the '… more nodes' box
    for python_word in ("max_nodes", "layers_only", "None"):
        assert python_word not in err and python_word not in out
    deep = ",".join(["3"] + ["4"] * 80 + ["1"])                         # past the default 400
    status, out, err = run(capsys, "graph", "--layers", deep)
    assert status == 0
    assert "more than --max-nodes 400" in err and "max_nodes" not in out + err


# --- as a user runs it: a separate process -------------------------------------------------------

def subprocess_run(*argv, **kwargs):
    return subprocess.run([sys.executable, "-m", "autograd_lite", *argv], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, **kwargs)


def test_a_process_prints_no_traceback_for_bad_input(tmp_path):
    for argv, status in [(["check", "--seed", "-1"], 2), (["train", "--m", "100000000000"], 2),
                         (["graph", "--output", str(tmp_path / "no" / "x.svg")], 2)]:
        done = subprocess_run(*argv)
        assert done.returncode == status, done.stderr
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_stdout_on_a_full_disk_is_one_line_exit_1():
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "autograd_lite", "graph"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert re.fullmatch(r"autograd-lite: error: cannot write to stdout: .*\n", done.stderr)


# --- the documented table ---------------------------------------------------------------------------

def test_the_exit_status_table_is_documented_for_every_command():
    from autograd_lite.cli import COMMANDS
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| status"))
    for command in COMMANDS:
        assert f"`{command}`" in header, f"docs/cli.md: add a column for `{command}` to the table"
    for status in ("**0**", "**1**", "**2**", "**130**"):
        assert f"| {status} |" in text


@pytest.mark.parametrize("argv, words", [
    (["--seed", "-1"], "--seed must be a whole number >= 0, got -1"),
    (["--alpha", "inf"], "--alpha must be a finite number above 0, got inf"),
    (["--m", "0"], "--m must be at least 1, got 0"),
    (["--m", "100000000000"], "at most 10,000,000"),
    (["--html", "page.txt"], "the page is an .html file"),
])
def test_demo_refuses_bad_options_in_one_line_with_exit_2(argv, words, capsys):
    """Before, --seed -1 printed numpy's traceback and --alpha inf trained into nan."""
    status, out, err = run(capsys, "demo", *argv)
    assert status == 2 and out == ""
    assert words in one_line(err)
