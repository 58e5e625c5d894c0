"""`keras.applications` backbones on JAX (the checks: `tests/backbone_checks.py`). JAX's
CPU convolutions and its tracing are slow, and building one of these models took about a
minute on two busy cores: the fast tier checks the registry, the slow tier every model."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import backbone_checks  # noqa: E402


def test_registry_lists_taps():
    backbone_checks.check_registry_lists_taps()


@pytest.mark.parametrize("check, name", backbone_checks.params())
def test_keras_applications_backbone(check, name, tmp_path):
    backbone_checks.PER_MODEL[check](name, tmp_path)
