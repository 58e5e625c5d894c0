"""applications/celeba.py trains and evaluates on tfds' mock CelebA (offline)."""

import importlib.util
import pathlib

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

APP = pathlib.Path(__file__).resolve().parents[1] / "applications" / "celeba.py"


def _application(monkeypatch):
    monkeypatch.syspath_prepend(str(APP.parent))  # the applications import _common
    spec = importlib.util.spec_from_file_location("celeba", APP)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    return app


def test_mock_run_prints_each_methods_error_per_attribute(capsys, monkeypatch):
    app = _application(monkeypatch)
    with tfds.testing.mock_data(num_examples=8):
        errors = app.main(["--epochs", "1", "--batch-size", "4", "--image-size", "16",
                           "--widths", "4,8", "--blocks", "1", "--methods", "mgda,equal", "--attributes", "3",
                           "--max-train", "8", "--max-test", "8"])
    assert list(errors) == ["mgda", "equal"]
    for per_attribute in errors.values():
        values = np.array(list(per_attribute.values()))
        assert list(per_attribute) == ["five_o_clock_shadow", "arched_eyebrows", "attractive"]
        assert np.all((values >= 0) & (values <= 100))
        # 8 test images: each error is a multiple of 12.5 %.
        np.testing.assert_allclose(values / 12.5, np.round(values / 12.5), atol=1e-4)
    out = capsys.readouterr().out
    assert "mean error %" in out and "five_o_clock_shadow" in out and "mgda_weight" not in out


def test_gradient_methods_run_on_the_representation(monkeypatch):
    app = _application(monkeypatch)
    mgda = app.weighting("mgda")
    assert mgda.gradient_mode == "representation" and mgda.normalization == "loss+"
    assert app.weighting("pcgrad").gradient_mode == "representation"
    assert app.weighting("equal").__class__.__name__ == "Equal"


def test_the_trunk_is_resnet_18_shaped():
    from keras_mtl.zoo.celeba_resnet18 import resnet_trunk

    trunk = resnet_trunk((64, 64, 3))
    convolutions = [l for l in trunk.layers if l.__class__.__name__ == "Conv2D" and "proj" not in l.name]
    assert len(convolutions) == 17  # the stem and 4 stages x 2 blocks x 2 (+ the head: 18)
    assert trunk.output.shape == (None, 2048)
