"""keras_mtl on the JAX backend without TensorFlow: `import keras_mtl` does not import
it, training, `.keras` files and the numpy loaders work with it unavailable, and the
features that need it (`tf.data` pipelines, SavedModel export) name themselves in an
`ImportError`. Each check runs in a fresh process (a module once imported stays)."""

import os
import subprocess
import sys

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_IMPORT_ONLY = """
import sys
import keras_mtl
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tensorflow_datasets"))
print("loaded:", loaded[:5])
assert not loaded, loaded
"""

_TENSORFLOW_UNAVAILABLE = """
import os, sys, tempfile
sys.modules["tensorflow"] = None  # `import tensorflow` raises ImportError from here on
import keras
import numpy as np
import keras_mtl
from weighting_utils import tiny_data, tiny_model

model = tiny_model()
model.compile(optimizer="adam", weighting="uncertainty")
x, y = tiny_data()
model.fit(x, y, batch_size=16, epochs=1, verbose=0)
path = os.path.join(tempfile.mkdtemp(), "model.keras")
model.save(path)
loaded = keras.models.load_model(path)
np.testing.assert_array_equal(loaded.predict(x, verbose=0)["reg"], model.predict(x, verbose=0)["reg"])
images, labels = keras_mtl.datasets.scenes_arrays(2, 12, 16)
assert images.shape == (2, 12, 16, 3)
for name, call in [("scenes", lambda: keras_mtl.datasets.scenes(2, 12, 16)),
                   ("pk_batches", lambda: keras_mtl.datasets.pk_batches(x, y["cls"], 2, 2)),
                   ("export", lambda: keras_mtl.export(model, tempfile.mkdtemp()))]:
    try:
        call()
    except ImportError as error:
        print(f"{name}: ImportError: {error}")
    else:
        print(f"{name}: no error")
"""


def _run(code):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([os.path.dirname(_TESTS), _TESTS,
                                          os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_import_does_not_import_tensorflow():
    assert "loaded: []" in _run(_IMPORT_ONLY)


def test_training_runs_without_tensorflow_and_what_needs_it_says_so():
    out = _run(_TENSORFLOW_UNAVAILABLE)
    features = {"scenes": "The Scenes tf.data pipeline (keras_mtl.datasets.scenes.scenes)",
                "pk_batches": "P x K batches (keras_mtl.datasets.pk_batches)",
                "export": "SavedModel export (keras_mtl.export)"}
    for name, feature in features.items():
        assert f"{name}: ImportError: {feature} needs TensorFlow, which is not installed" in out, out
