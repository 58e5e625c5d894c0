"""`keras_mtl.detection` against float64 numpy references on JAX (the checks:
`tests/detection_checks.py`; on TensorFlow: `tests/test_detection.py`). JAX runs these
small functions op by op, compiling each operation, and its CPU convolutions are slow:
the checks that call them most, and the training run, are in the slow tier."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import detection_checks  # noqa: E402

_SLOW = ("matching", "sampling", "targets")


@pytest.mark.parametrize("check", [pytest.param(name, marks=[pytest.mark.slow] if name in _SLOW else [])
                                   for name in detection_checks.CHECKS])
def test_detection_matches_reference(check):
    detection_checks.CHECKS[check]()


@pytest.mark.slow
def test_rpn_trains_saves_and_reloads(tmp_path):
    detection_checks.check_rpn_trains_saves_and_reloads(tmp_path)
