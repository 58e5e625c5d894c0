"""`keras_mtl.detection` against float64 numpy references on JAX (the checks:
`tests/detection_checks.py`; on TensorFlow: `tests/test_detection.py`)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import detection_checks  # noqa: E402


@pytest.mark.parametrize("check", list(detection_checks.CHECKS))
def test_detection_matches_reference(check):
    detection_checks.CHECKS[check]()
