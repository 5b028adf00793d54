"""examples/out_of_core.py on a small m: the seed network trained on Dask arrays drawn chunk by
chunk, or stored on disk chunk by chunk, on threads or a cluster's address; J falls; the same
data and J whichever way; a bad option is one line and exit status 2 before any work."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "out_of_core.py"
SMALL = ["--m", "30000", "--chunk", "4000", "--steps", "4"]


def example():
    spec = importlib.util.spec_from_file_location("example_out_of_core", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def losses(output):
    return [float(J) for J in re.findall(r"J = ([0-9.]+)", output)]


@pytest.fixture(scope="module")
def generated_run():
    done = subprocess.run([sys.executable, str(EXAMPLE)] + SMALL, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_J_falls_over_the_steps(generated_run):
    found = losses(generated_run)
    assert len(found) == 4
    assert found[-1] < found[0] and all(np.isfinite(found))
    assert "m = 30,000 samples in 8 chunks of 4,000 columns" in generated_run


def test_each_chunk_is_the_same_wherever_it_is_drawn():
    """A chunk comes from its own generator: drawing it alone gives what the whole array has."""
    module = example()
    X, Y = module.generated(10_000, 3000, seed=5)
    assert X.chunks == ((3,), (3000, 3000, 3000, 1000)) and Y.chunks == ((1,), X.chunks[1])
    whole_X, whole_Y = X.compute(), Y.compute()
    assert np.array_equal(X.blocks[0, 2].compute(), whole_X[:, 6000:9000])
    assert np.array_equal(Y.blocks[0, 3].compute(), whole_Y[:, 9000:])
    assert set(np.unique(whole_Y)) == {0.0, 1.0}
    assert not np.array_equal(whole_X, module.generated(10_000, 3000, seed=6)[0].compute())


def test_columns_stored_on_disk_train_the_same(generated_run, tmp_path, capsys):
    module = example()
    assert module.main(SMALL + ["--data", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    assert "writing" in first
    assert losses(first) == pytest.approx(losses(generated_run), rel=1e-12)
    X = np.load(tmp_path / "X.npy", allow_pickle=False)
    assert X.shape == (3, 30000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy", "Y.npy"]
    assert module.main(SMALL + ["--data", str(tmp_path)]) == 0  # read back, not written again
    second = capsys.readouterr().out
    assert "writing" not in second and losses(second) == pytest.approx(losses(first), rel=1e-12)


def test_a_cluster_address_trains_the_same(generated_run, capsys):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        assert example().main(SMALL + ["--scheduler", cluster.scheduler_address]) == 0
    output = capsys.readouterr().out
    assert "1 workers" in output
    assert losses(output) == pytest.approx(losses(generated_run), rel=1e-12)


def test_worker_processes_train_the_same(generated_run):
    done = subprocess.run([sys.executable, str(EXAMPLE)] + SMALL[:4] + ["--steps", "2",
                          "--scheduler", "processes"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert losses(done.stdout) == pytest.approx(losses(generated_run)[:2], rel=1e-12)


@pytest.mark.parametrize("argv, fragment", [
    (["--m", "0"], "argument --m: must be a whole number from 1 to"),
    (["--m", "1e8"], "argument --m: must be a whole number"),
    (["--chunk", "0"], "argument --chunk: must be a whole number >= 1"),
    (["--m", "100", "--chunk", "1000"], "--chunk 1000 is more than --m 100 columns"),
    (["--m", "10000000", "--chunk", "1"], "use at most a million"),
    (["--steps", "0"], "argument --steps: must be a whole number >= 1"),
    (["--alpha", "-1"], "argument --alpha: must be a finite number above 0"),
    (["--alpha", "nan"], "argument --alpha: must be a finite number above 0"),
    (["--scheduler", "fast"], "argument --scheduler: must be threads, processes or a scheduler's"),
    (["--data", str(EXAMPLE)], "is not a directory"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_a_bad_option_is_one_line_and_exit_2_before_any_work(argv, fragment, capsys, monkeypatch):
    module = example()
    monkeypatch.setattr(module, "generated", lambda *a, **k: pytest.fail("started working"))
    with pytest.raises(SystemExit) as exit:
        module.main(argv)
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("out_of_core.py: error: ")
    assert fragment in error


def test_too_little_disk_for_the_data_is_refused(tmp_path, capsys, monkeypatch):
    module = example()
    monkeypatch.setattr(module.shutil, "disk_usage", lambda path: type("U", (), {"free": 10**6}))
    with pytest.raises(SystemExit) as exit:
        module.main(["--m", "1000000", "--data", str(tmp_path / "new")])
    assert exit.value.code == 2
    assert "needs 32.0 MB, the disk has 1.0 MB free" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
