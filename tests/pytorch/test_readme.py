"""The README's code blocks (the API tour) run on the PyTorch backend; `keras_mtl.export`
there goes the way its error names without `torch_xla`: the model saved as a `.keras`
file and exported in a TensorFlow process."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_mtl

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_docs import ROOT, run_blocks  # noqa: E402
from weighting_utils import TASKS, tiny_data, tiny_model  # noqa: E402


def export_in_tensorflow(model, path):
    """`keras_mtl.export(model, path)` run in a TensorFlow process on the model's
    `.keras` file."""
    path = os.path.abspath(os.fspath(path))
    saved = path.rstrip("/") + ".keras"
    os.makedirs(os.path.dirname(saved), exist_ok=True)
    model.save(saved)
    code = ("import sys, keras, keras_mtl; "
            "keras_mtl.export(keras.models.load_model(sys.argv[1]), sys.argv[2])")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code, saved, path], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return path


def test_export_names_the_way_without_torch_xla(tmp_path):
    model = tiny_model()
    with pytest.raises(NotImplementedError, match=r"needs torch_xla .* save the model|"
                                                  r"model.save\('.*\.keras'\)"):
        keras_mtl.export(model, tmp_path / "exported")


def test_a_torch_trained_model_exports_through_its_keras_file(tmp_path):
    tf = pytest.importorskip("tensorflow")
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="uncertainty")
    x, y = tiny_data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = export_in_tensorflow(model, tmp_path / "exported")
    served = tf.saved_model.load(path).signatures["serving_default"](inputs=tf.constant(x))
    expected = model.predict(x, verbose=0)
    assert sorted(served) == sorted(TASKS)
    for name in TASKS:
        np.testing.assert_allclose(served[name].numpy(), expected[name], rtol=1e-5, atol=1e-6)


def test_readme_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(keras_mtl, "export", export_in_tensorflow)
    assert run_blocks(ROOT / "README.md", tmp_path, monkeypatch, include_slow=False) > 0
