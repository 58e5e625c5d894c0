"""Smoke test of applications/scenes.py with tiny flags: the sweep over training-set
sizes and seeds, the story it prints, its plots, the export, and a later call that
extends its results file with more sizes."""

import importlib.util
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

APPLICATION = os.path.join(os.path.dirname(__file__), "..", "applications", "scenes.py")
FLAGS = ["--height", "16", "--width", "16", "--train", "16", "--val", "8", "--epochs", "2",
         "--batch-size", "8", "--filters", "4,8", "--seeds", "2"]


@pytest.mark.slow
def test_scenes_prints_the_story_writes_its_plots_exports_and_extends_its_results(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(os.path.dirname(APPLICATION))  # the applications import _common, _scenes
    spec = importlib.util.spec_from_file_location("scenes_application", APPLICATION)
    application = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(application)
    export, figures, predictions, results = (tmp_path / "model", tmp_path / "figures", tmp_path / "predictions.png",
                                             tmp_path / "sizes.json")
    outputs = ["--figures", str(figures), "--results", str(results)]
    summary = application.main(FLAGS + outputs + ["--train-sizes", "8,24", "--weightings", "equal,cagrad",
                                                  "--export", str(export), "--plot", str(predictions)])
    printed = capsys.readouterr().out
    assert "seeds 0-1" in printed
    stored = json.loads(results.read_text())
    for size in (8, 24):
        for row in (f"multi-task n={size}", f"multi-task cagrad n={size}"):
            assert summary[row]["baseline"] == f"single-task n={size}" and len(summary[row]["delta_m"]["values"]) == 2
            assert re.search(rf"^{row}\s+\d\.\d{{3}}\+-\d\.\d{{3}}\s", printed, re.MULTILINE)
            assert re.search(rf"^  n={size}\s+[-+]\d+\.\d\d \+- \d+\.\d\d %", printed, re.MULTILINE)
        single = summary[f"single-task n={size}"]["metrics"]
        assert summary[f"multi-task n={size}"]["metrics"]["parameters"]["mean"] < single["parameters"]["mean"]
    # Every size trains the same steps: 2 epochs of 16 images in batches of 8.
    assert {r["metrics"]["train_steps"] for r in stored["runs"]} == {4.0} and len(stored["runs"]) == 12
    parameters = re.search(r"parameters\s+([\d,]+) vs\s+([\d,]+)", printed).groups()
    assert [int(p.replace(",", "")) for p in parameters] == [
        summary["multi-task n=8"]["metrics"]["parameters"]["mean"], summary["single-task n=8"]["metrics"]["parameters"]["mean"]]
    assert re.search(r"inference, all tasks\s+\d+\.\d\d vs\s+\d+\.\d\d ms/image", printed)
    assert re.search(r"Does it gain more with less data\? Change of delta_m per doubling of the training set\n"
                     r"  \(per seed: [-+]\d+\.\d\d, [-+]\d+\.\d\d\)", printed)
    assert "Best weighting method on Scenes" in printed
    assert max(len(line) for line in printed.splitlines() if str(tmp_path) not in line) <= 100
    for name in ("delta_m_by_size", "delta_m", "metric_changes"):
        assert (figures / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert predictions.stat().st_size > 10_000
    served = tf.saved_model.load(str(export)).signatures["serving_default"]
    outputs_ = served(tf.constant(np.zeros((2, 16, 16, 3), np.float32)))
    assert {k: tuple(v.shape) for k, v in outputs_.items()} == {
        "segmentation": (2, 16, 16, 6), "depth": (2, 16, 16, 1), "normals": (2, 16, 16, 3)}
    # One more size with equal weights only: the stored runs are kept, two new rows per seed run.
    application.main(FLAGS + outputs + ["--train-sizes", "8,16,24", "--export", ""])
    assert "12 finished runs kept, 4 to run" in capsys.readouterr().out
    assert len(json.loads(results.read_text())["runs"]) == 16


def _application():
    import sys
    sys.path.insert(0, os.path.dirname(APPLICATION))
    try:
        spec = importlib.util.spec_from_file_location("scenes_application", APPLICATION)
        application = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(application)
    finally:
        sys.path.remove(os.path.dirname(APPLICATION))
    return application


def test_the_summary_and_the_story_fit_100_columns(capsys):
    from keras_mtl import experiments

    application = _application()
    rng = np.random.default_rng(0)
    runs = []
    for seed in range(3):
        for size in (150, 2400):
            for row in (f"single-task n={size}", f"multi-task n={size}", f"multi-task cagrad n={size}"):
                # Wide values: angles to 90 degrees, and delta_m to hundreds of percent.
                metrics = {name: float(rng.uniform(0.001, 90.0 if "angle" in name else 1.0))
                           for name in application.HIGHER_IS_BETTER}
                runs.append({"configuration": row, "seed": seed, "seconds": 123.0,
                             "metrics": {**metrics, "train_seconds": 99.0}})
    summary = experiments.summarize(
        runs, {row: f"single-task n={row.rsplit('=', 1)[1]}" for row in {r["configuration"] for r in runs}},
        application.HIGHER_IS_BETTER)
    table = application.summary_table(summary)
    assert max(len(line) for line in table.splitlines()) <= 100
    assert re.search(r"^multi-task cagrad n=2400\s+\d\.\d{3}\+-\d\.\d{3}\s.*[-+]\d+\.\d\d\+-\d+\.\d\d\s+"
                     r"0\.\d{3}\*?\s+99$", table, re.MULTILINE)
    args = application.parse_args(["--train-sizes", "150,2400", "--weightings", "equal,cagrad"])
    application.print_story(summary, args, {"parameters": (14_506, 39_834), "inference ms/image": (1.65, 4.05),
                                            "training ms/step": (102.0, 214.0)})
    printed = capsys.readouterr().out
    assert "per seed:" in printed and "Does it gain more with less data" in printed
    assert max(len(line) for line in printed.splitlines()) <= 100


@pytest.mark.slow
def test_scenes_default_output_has_no_tensorflow_warnings(tmp_path):
    """In a fresh process (TensorFlow's C++ log level is read at its import)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, APPLICATION, *FLAGS, "--train-sizes", "8", "--figures", "",
                           "--export", str(tmp_path / "model")], capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0, done.stderr
    assert "Skipping loop optimization" not in done.stderr and "retracing" not in done.stderr
    assert not re.search(r"^(W0000|WARNING)", done.stderr, re.MULTILINE), done.stderr
    assert max(len(line) for line in done.stdout.splitlines() if str(tmp_path) not in line) <= 100
    assert "[4/4] multi-task n=8 seed 1" in done.stdout
