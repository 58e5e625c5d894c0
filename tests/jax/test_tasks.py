"""`keras_mtl.tasks` presets on JAX (the checks: `tests/task_preset_checks.py`). JAX
runs the dense losses and metrics op by op, compiling each operation, and its CPU
convolutions are slow: the dense presets' checks are in the slow tier."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import task_preset_checks  # noqa: E402

_SLOW = ("depth", "detection", "segmentation")


@pytest.mark.parametrize("check", [pytest.param(name, marks=[pytest.mark.slow] if name in _SLOW else [])
                                   for name in sorted(task_preset_checks.CHECKS)])
def test_task_preset(check):
    task_preset_checks.CHECKS[check]()
