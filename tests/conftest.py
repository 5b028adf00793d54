"""Shared test set-up."""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The programs the tests start (`python -m autograd_lite ...`, scripts/make_pictures.py) import
# this checkout's autograd_lite, as the tests do, not another copy that happens to be installed
# (a machine with an older checkout installed ran the old code in those tests).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
