"""`keras_mtl.detection` against float64 numpy references written from Faster R-CNN
on TensorFlow (the checks: `tests/detection_checks.py`; on JAX:
`tests/jax/test_detection.py`)."""

import pytest

import detection_checks


@pytest.mark.parametrize("check", list(detection_checks.CHECKS))
def test_detection_matches_reference(check):
    detection_checks.CHECKS[check]()


def test_rpn_trains_saves_and_reloads(tmp_path):
    detection_checks.check_rpn_trains_saves_and_reloads(tmp_path)


@pytest.mark.slow
def test_docs_example_runs(tmp_path, monkeypatch):
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "detection.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 13
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code.replace("epochs=2", "epochs=1, verbose=0"), "docs/detection.md", "exec"), namespace)
    assert "val_map" in namespace["model"].history.history
