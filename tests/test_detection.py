"""`keras_mtl.detection` against float64 numpy references written from Faster R-CNN
on TensorFlow (the checks: `tests/detection_checks.py`; on JAX:
`tests/jax/test_detection.py`)."""

import pytest

import detection_checks


@pytest.mark.parametrize("check", list(detection_checks.CHECKS))
def test_detection_matches_reference(check):
    detection_checks.CHECKS[check]()
