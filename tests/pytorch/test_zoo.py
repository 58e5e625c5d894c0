"""`keras_mtl.zoo` on PyTorch (the checks: `tests/zoo_checks.py`): every model builds,
trains a step and round-trips through a `.keras` file; SavedModel export needs
torch_xla on this backend (`keras_mtl.export` says so), so it is left out here. The
eager step has no tracing to wait for: every model's check takes seconds."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import zoo_checks  # noqa: E402


@pytest.mark.parametrize("name", sorted(zoo_checks.CASES))
def test_zoo_model_builds(name):
    zoo_checks.check_zoo_model_builds(name)


@pytest.mark.parametrize("name", sorted(zoo_checks.CASES))
def test_zoo_model_trains_and_saves(name, tmp_path):
    zoo_checks.check_zoo_model(name, tmp_path, export=False)
