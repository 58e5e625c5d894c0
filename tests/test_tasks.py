"""`keras_mtl.tasks` presets on TensorFlow (the checks: `tests/task_preset_checks.py`;
on JAX: `tests/jax/test_tasks.py`)."""

import pytest

import task_preset_checks


@pytest.mark.parametrize("check", sorted(task_preset_checks.CHECKS))
def test_task_preset(check):
    task_preset_checks.CHECKS[check]()
