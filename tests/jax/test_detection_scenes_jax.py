"""The detector on JAX: applications/detection_scenes.py's smoke test (both the RPN
alone and beside segmentation and depth train; on TensorFlow:
`tests/test_detection_scenes_application.py`), and a SavedModel exported from JAX
(through `jax2tf`) serving the detections of a float64 numpy decode + NMS."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import detection_checks  # noqa: E402
import test_detection_scenes_application as smoke  # noqa: E402


@pytest.mark.slow
def test_detection_scenes_trains_on_jax(tmp_path, monkeypatch, capsys):
    smoke.test_detection_scenes_prints_map_delta_m_lambda_and_draws(tmp_path, monkeypatch, capsys)


@pytest.mark.slow
def test_detector_export_from_jax_serves_the_detections(tmp_path):
    detection_checks.check_detector_export(tmp_path)
