"""applications/gradnorm_synthetic.py runs end to end on a tiny configuration."""

import importlib.util
import pathlib

import numpy as np
import pytest

pytest.importorskip("matplotlib")

APP = pathlib.Path(__file__).resolve().parents[1] / "applications" / "gradnorm_synthetic.py"


def test_tiny_run_reports_errors_and_writes_the_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(APP.parent))  # the applications import _common
    spec = importlib.util.spec_from_file_location("gradnorm_synthetic", APP)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    x, y, _, _, sigmas = app.make_data(3, 100.0, 64, 8, seed=0)
    np.testing.assert_allclose(sigmas, [1.0, 10.0, 100.0])
    assert x.shape == (64, 250) and np.allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert np.abs(y["task2"]).max() <= 100.0 and np.abs(y["task2"]).max() > 10.0
    plot = tmp_path / "w.png"
    results = app.main(["--tasks", "3", "--train", "128", "--test", "32", "--epochs", "3",
                        "--batch-size", "64", "--plot", str(plot)])
    assert list(results) == ["equal", "uncertainty", "gradnorm", "dwa"]
    for errors, history, _ in results.values():
        assert errors.shape == (3,) and np.all(np.isfinite(errors))
        assert len(history.history["task0_weight"]) == 3
    assert plot.stat().st_size > 1000
    out = capsys.readouterr().out
    assert "gradnorm" in out and "weight trajectories written" in out
