"""Smoke tests of applications/detection_scenes.py with tiny flags: the fixed-lambda
detector, the weighting methods and detection + segmentation + depth on one trunk, their
mAP table, delta_m, the effective lambda and the figure of detections."""

import importlib.util
import json
import os
import re

import pytest

APPLICATION = os.path.join(os.path.dirname(__file__), "..", "applications", "detection_scenes.py")
FLAGS = ["--height", "16", "--width", "16", "--train", "16", "--val", "8", "--epochs", "1",
         "--batch-size", "8", "--filters", "4,8"]


def _application(monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(APPLICATION))  # the applications import _common, _scenes
    spec = importlib.util.spec_from_file_location("detection_scenes_application", APPLICATION)
    application = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(application)
    return application


def test_detection_scenes_prints_map_delta_m_lambda_and_draws(tmp_path, monkeypatch, capsys):
    application = _application(monkeypatch)
    summary = application.main(FLAGS + ["--methods", "", "--figures", str(tmp_path)])
    printed = capsys.readouterr().out
    assert list(summary) == ["fixed_lambda_1", "det+seg+depth"]
    for row in summary.values():
        assert 0.0 <= row["metrics"]["map"]["mean"] <= row["metrics"]["map50"]["mean"] <= 1.0
    dense = summary["det+seg+depth"]["metrics"]
    assert 0.0 <= dense["segmentation_miou"]["mean"] <= 1.0 and dense["depth_abs_error"]["mean"] > 0
    assert re.search(r"^fixed_lambda_1\s+\d\.\d{4}\s+\d\.\d{4}\s+-\s+-\s+0\.00\s", printed, re.MULTILINE)
    assert "Effective lambda (last-epoch weight of boxes / objectness, mean over the seeds run here): " \
           "fixed_lambda_1 1.00; det+seg+depth 1.00" in printed
    assert (tmp_path / "detection_scenes.png").stat().st_size > 10_000
    with pytest.raises(SystemExit):
        application.parse_args(FLAGS[:-2] + ["--filters", "8"])


@pytest.mark.slow
def test_detection_scenes_over_seeds_with_methods(tmp_path, monkeypatch, capsys):
    application = _application(monkeypatch)
    results = tmp_path / "detection.json"
    summary = application.main(FLAGS + ["--methods", "uncertainty,pcgrad", "--seeds", "2", "--results", str(results)])
    printed = capsys.readouterr().out
    stored = json.loads(results.read_text())
    assert sorted((r["configuration"], r["seed"]) for r in stored["runs"]) == sorted(
        (row, seed) for row in ("fixed_lambda_1", "uncertainty", "pcgrad", "det+seg+depth") for seed in (0, 1))
    for row in ("uncertainty", "pcgrad", "det+seg+depth"):
        assert len(summary[row]["delta_m"]["values"]) == 2 and "p" in summary[row]["delta_m"]
        assert re.search(rf"^{re.escape(row)}\s+2\s", printed, re.MULTILINE)
    assert (tmp_path / "detection_delta_m.png").exists()
