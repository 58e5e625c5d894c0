"""`keras.applications` backbones on TensorFlow (the checks: `tests/backbone_checks.py`;
on JAX: `tests/jax/test_backbones_keras_applications.py`). Building one of these models takes
5-15 s and tracing its first training step 20-200 s on two busy cores: the fast tier
checks MobileNetV3Small's taps, the slow tier everything."""

import pytest

import backbone_checks


def test_registry_lists_taps():
    backbone_checks.check_registry_lists_taps()


@pytest.mark.parametrize("check, name", backbone_checks.params(fast={("taps", "mobilenetv3small")}))
def test_keras_applications_backbone(check, name, tmp_path):
    backbone_checks.PER_MODEL[check](name, tmp_path)
