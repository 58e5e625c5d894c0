"""Smoke test of applications/oxford_pets_metric.py on a tiny subset of the real
Oxford Pets sample (skipped when the data folder is absent)."""

import importlib.util
import os
import re
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "applications" / "oxford_pets_metric.py"
DATA = Path(os.environ.get("KERAS_MTL_DATA")
            or Path(__file__).resolve().parents[1].parent / "shared" / "data") / "oxford_pets_sample"


@pytest.mark.slow
@pytest.mark.parametrize("loss", [["--loss", "contrastive"], ["--loss", "triplet", "--mining", "batch_hard"]],
                         ids=["contrastive", "triplet"])
def test_tiny_run_prints_every_setting(loss, capsys, monkeypatch):
    if not DATA.is_dir():
        pytest.skip(f"real data folder {DATA} is absent (set KERAS_MTL_DATA)")
    monkeypatch.syspath_prepend(str(APP.parent))  # the applications import _common
    spec = importlib.util.spec_from_file_location("oxford_pets_metric", APP)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    summary = app.main(["--epochs", "1", "--seeds", "2", "--image-size", "16", "--max-examples", "36",
                        "--batch-size", "12", "--data", str(DATA), *loss])
    assert list(summary) == ["identification", "verification", "both"]
    assert set(summary["identification"]) == {"breed_accuracy", "verification_auc", "recall_at_1"}
    assert set(summary["verification"]) == {"verification_auc", "recall_at_1"}
    for metrics in summary.values():
        for mean, std in metrics.values():
            assert 0.0 <= mean <= 1.0 and std >= 0.0
    printed = capsys.readouterr().out
    # The common table: one row per setting over the 2 seeds, "both" with delta_m against the
    # single-task row (breed accuracy of identification alone, verification of verification alone).
    for row in ("identification", "verification", "both", "single-task"):
        assert re.search(rf"^{row}\s+2\s", printed, re.MULTILINE), row
    both = next(line for line in printed.splitlines() if line.startswith("both "))
    assert re.search(r"[-+]\d+\.\d\d \+- \d+\.\d\d\s+\d\.\d{3}\s+(within|exceeds)", both)
