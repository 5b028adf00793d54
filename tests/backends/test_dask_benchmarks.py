"""The backend benchmarks (``python -m benchmarks.run --backend dask|cupy``) cannot rot: their
steps and tables run here on tiny m, gradients checked as the real run checks them; the GPU
rows' code runs with numpy standing in for CuPy. Nothing here times anything."""
import sys

import numpy as np
import pytest

from benchmarks import backends, run


def test_the_dask_table_checks_times_and_measures_each_implementation(capsys):
    pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    median, peaks = backends.dask_table(m=400, chunk=100, budget=0.0, resident=False)
    table = capsys.readouterr().out
    assert "m = 400 in chunks of 100" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| numpy by hand", "| engine, numpy", "| engine, Dask"]
    assert all(row.endswith("| n/a |") for row in rows[1:])
    assert set(median) == set(peaks) == {"numpy by hand", "engine, numpy", "engine, Dask"}
    assert all(seconds > 0 for seconds in median.values())


def test_the_resident_peak_of_one_step_is_measured_in_a_fresh_process():
    pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[dask]'")
    if not sys.platform.startswith("linux"):
        assert backends.resident_peak("engine, Dask", 400, 100) is None
        return
    small, large = (backends.resident_peak("numpy by hand", m, m) for m in (10**3, 2 * 10**6))
    assert 0 <= small < large   # a step on 2e6 columns holds its 16 MB arrays, one on 1e3 does not
    assert large > 16 * 2**20


def test_the_cluster_rows_give_numpys_gradients(capsys):
    pytest.importorskip("distributed", reason="distributed is not installed: pip install -e '.[dask]'")
    seconds, differences = backends.cluster_rows(m=400, chunk=100)
    assert list(differences) == ["J", "dW[1]", "dW[2]", "db[1]", "db[2]"]
    assert all(d <= 1e-12 for d in differences.values()) and seconds > 0
    assert "LocalCluster of 2 worker processes, m = 400 in chunks of 100" in capsys.readouterr().out


def test_a_wrong_gradient_stops_the_run_before_timing():
    X, Y, W, b = backends.seed_problem(50)
    J, dW, db = backends.engine_grads(W, b, X, Y)
    expected = backends.numpy_grads(W, b, X, Y)
    backends.assert_same_gradients("engine", (J, dW, db), expected, 1e-12)
    with pytest.raises(SystemExit, match=r"dW\[2\] differs from the hand-written numpy step"):
        backends.assert_same_gradients("engine", (J, dW[:1] + [dW[1] * (1 + 1e-9)], db),
                                       expected, 1e-12)


def test_the_gpu_rows_code_runs_with_numpy_standing_in_for_cupy():
    synchronized = []
    steps = backends.device_steps(np, np.asarray, lambda: synchronized.append(1), m=64)
    assert list(steps) == ["numpy by hand (CPU)", "by hand (GPU)", "engine (GPU)"]
    for step in steps.values():
        step()
    assert len(synchronized) == 2  # every device step waits for the device


def test_without_a_gpu_the_cupy_rows_say_why_and_exit_0(capsys):
    if backends.cupy_missing() is None:
        pytest.skip("cupy sees a GPU here: the rows run for real")
    assert run.main(["--backend", "cupy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--backend cupy: skipped: cupy ") and out.count("\n") == 1
