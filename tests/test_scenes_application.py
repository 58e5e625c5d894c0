"""Smoke test of applications/scenes.py with tiny flags."""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

APPLICATION = os.path.join(os.path.dirname(__file__), "..", "applications", "scenes.py")


@pytest.mark.slow
def test_scenes_application_trains_prints_the_table_exports_and_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(APPLICATION))  # the applications import _common, _scenes
    spec = importlib.util.spec_from_file_location("scenes_application", APPLICATION)
    application = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(application)
    export, figure = tmp_path / "scenes", tmp_path / "scenes.png"
    application.main(["--height", "16", "--width", "16", "--train", "32", "--val", "16",
                      "--epochs", "1", "--batch-size", "16", "--filters", "4,8",
                      "--export", str(export), "--plot", str(figure), "--verbose", "0"])
    printed = capsys.readouterr().out
    for metric in application.HIGHER_IS_BETTER:
        row = next(line for line in printed.splitlines() if line.startswith(metric + " "))
        assert len(row.split()) == 5  # name, prior, single-task, multi-task, better
    assert "delta_m of the multi-task model vs the single-task baselines" in printed
    assert figure.stat().st_size > 10_000
    served = tf.saved_model.load(str(export)).signatures["serving_default"]
    outputs = served(tf.constant(np.zeros((2, 16, 16, 3), np.float32)))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "segmentation": (2, 16, 16, 6), "depth": (2, 16, 16, 1), "normals": (2, 16, 16, 3)}
