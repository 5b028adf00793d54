"""``autograd-lite check|graph|train|demo --backend NAME``: the same seeded network on torch,
array-api-strict, JAX, CuPy or Dask says what it says on numpy (the same rows, verdicts and
picture; numbers to round-off); a backend that cannot run here is refused in one line, exit
status 2, naming the way out."""
import importlib
import json

import pytest

from edges_util import EDGE_BACKENDS, assert_same_numbers
from report_text import assert_same_report

cli_main = importlib.import_module("autograd_lite.cli.main")  # the module: cli.main is main()


def run(capsys, *argv):
    status = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def verdicts(report):
    return [(row["label"], {name: None if pair is None else pair["passed"]
                            for name, pair in row["pairs"].items()}) for row in report["rows"]]


@pytest.mark.parametrize("wrong", [[], ["--wrong", "eq55", "--wrong-layer", "1"]])
@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_check_on_any_backend_reports_what_numpy_reports(backend, wrong, capsys):
    expected_status, expected, _ = run(capsys, "check", "--json", *wrong)
    status, out, err = run(capsys, "check", "--json", "--backend", backend.name, *wrong)
    assert (status, err) == (expected_status, "")
    report, expected = json.loads(out), json.loads(expected)
    assert verdicts(report) == verdicts(expected)
    assert report["first_failure"] == expected["first_failure"]
    for row, row_expected in zip(report["rows"], expected["rows"]):
        assert row["shapes"] == row_expected["shapes"]
    assert abs(report["J"]["autodiff"] - expected["J"]["autodiff"]) <= 1e-12


@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_graph_on_any_backend_draws_numpys_picture(backend, capsys):
    # by shape (Dask's graph not run: tests/backends/test_dask_edges.py) and with values
    # (Dask's graph computed once)
    for options in ([], ["--values"], ["--backward", "--grads", "--values"],
                    ["--backward", "--compare", "--values"]):
        expected = run(capsys, "graph", *options)
        assert run(capsys, "graph", "--backend", backend.name, *options) == expected, options


@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_train_on_any_backend_trains_as_on_numpy(backend, capsys):
    options = ["train", "--json", "--epochs", "6", "--every", "3", "--optimizer", "adam",
               "--batch-size", "50"]
    status, expected, _ = run(capsys, *options)
    assert status == 0
    status, out, err = run(capsys, *options, "--backend", backend.name)
    assert (status, err) == (0, "")
    assert_same_numbers(json.loads(out)["history"], json.loads(expected)["history"], rtol=1e-9)


@pytest.mark.parametrize("backend", EDGE_BACKENDS)
def test_demo_on_any_backend_prints_what_numpy_prints(backend, capsys):
    """The seed's network (eqs 26-29), its gradients beside eqs 77-84 and a few steps of eqs
    74-75: every line, verdict and shape as on numpy, numbers to round-off (another BLAS sums
    in another order)."""
    options = ["demo", "--m", "4", "--steps", "10"]
    expected_status, expected, _ = run(capsys, *options)
    status, out, err = run(capsys, *options, "--backend", backend.name)
    assert (status, err) == (expected_status, "") and status == 0
    assert "(agree;" in out and "loss fell from" in out
    assert_same_report(expected, out, rtol=1e-9)


@pytest.mark.parametrize("name, extra", [("torch", "torch"), ("dask", "dask"), ("jax", "jax")])
@pytest.mark.parametrize("command", ["check", "demo"])
def test_a_backend_that_is_not_installed_is_refused_naming_the_way_out(command, name, extra,
                                                                      capsys, monkeypatch):
    monkeypatch.setitem(cli_main.BACKENDS, name, ("no_such_module_here", f"{name} arrays"))
    status, out, err = run(capsys, command, "--backend", name)
    assert status == 2 and out == ""
    assert err.startswith(f"autograd-lite: error: --backend {name}: ModuleNotFoundError")
    assert f"pip install -e '.[{extra}]'" in err and len(err.splitlines()) == 1


def test_jax_without_float64_is_refused_naming_the_way_out(capsys):
    jax = pytest.importorskip("jax", reason="jax is not installed")
    if jax.config.jax_enable_x64:
        pytest.skip("jax_enable_x64 is on here")
    status, _, err = run(capsys, "graph", "--backend", "jax")
    assert status == 2 and "JAX_ENABLE_X64=1" in err and len(err.splitlines()) == 1


def test_cupy_without_a_gpu_is_refused_naming_the_way_out(capsys):
    try:
        cupy = importlib.import_module("cupy")
        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("CuPy sees a GPU here: its tests run instead")
    except Exception:  # noqa: BLE001 - not installed, or no driver: refused all the same
        pass
    status, _, err = run(capsys, "check", "--backend", "cupy")
    assert status == 2 and err.startswith("autograd-lite: error: --backend cupy:")
    assert "pip install -e '.[gpu]'" in err
