"""`keras_mtl.zoo` on JAX (the checks: `tests/zoo_checks.py`). JAX's CPU convolutions
and its tracing of the multi-task step are slow: the full check (one training step,
`.keras` round trip, export through jax2tf) takes 25-45 s a model on two busy cores,
and building the dense models' graphs 10-80 s: the fast tier builds the light models
and runs the full check of one (MMoE), the slow tier everything."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import zoo_checks  # noqa: E402

_FAST = ("mmoe_census",)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in zoo_checks.SLOW else [])
                                  for n in sorted(zoo_checks.CASES)])
def test_zoo_model_builds(name):
    zoo_checks.check_zoo_model_builds(name)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n in _FAST else [pytest.mark.slow])
                                  for n in sorted(zoo_checks.CASES)])
def test_zoo_model_trains_saves_and_exports(name, tmp_path):
    zoo_checks.check_zoo_model(name, tmp_path)
