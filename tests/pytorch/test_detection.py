"""`keras_mtl.detection` against float64 numpy references on PyTorch (the checks:
`tests/detection_checks.py`), and a region proposal network that trains, saves and
reloads; SavedModel export needs torch_xla on this backend and is left out."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import detection_checks  # noqa: E402


@pytest.mark.parametrize("check", list(detection_checks.CHECKS))
def test_detection_matches_reference(check):
    detection_checks.CHECKS[check]()


def test_rpn_trains_saves_and_reloads(tmp_path):
    detection_checks.check_rpn_trains_saves_and_reloads(tmp_path)
