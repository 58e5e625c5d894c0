"""The TensorFlow and JAX trainers agree: the same model, initial weights and batches
trained for 12 SGD (or Adam) steps on each backend end with the same weights,
weighting state, logged task losses and predictions (to 1e-5) for every
deterministic weighting method, both gradient modes, masks, absent tasks under
`freeze_absent_tasks`, separate optimizers, and a trunk with regularizers and
batch normalization; a `.keras` file saved on one backend
loads on the other and predicts the same. Each backend trains in its own process
(`tests/cross_backend_run.py`)."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                       reason="needs JAX (pip install '.[jax]')"),
]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cross_backend_run  # noqa: E402

_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cross_backend_run.py")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOSS_METHODS = ["equal", "fixed", "dtp", "dwa", "uncertainty", "gradnorm", "gls", "famo"]
GRADIENT_METHODS = ["aligned_mtl", "cagrad", "imtl", "mgda", "nash_mtl"]
CONFIGS = ([f"{m}:-" for m in LOSS_METHODS]
           + [f"{m}:{g}" for m in GRADIENT_METHODS for g in ("shared_parameters", "representation")]
           + ["equal:-:masks:freeze:optimizers", "famo:-:masks:freeze", "dwa:-:masks",
              "uncertainty:-:optimizers", "mgda:shared_parameters:masks:freeze:optimizers",
              "imtl:representation:masks", "uncertainty:-:regularized",
              "mgda:shared_parameters:regularized", "imtl:representation:regularized"])
LOADED = ["uncertainty:-", "famo:-:masks:freeze", "mgda:representation"]


def _run(backend, *args):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([_ROOT, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, _RUNNER, *args], env=env, capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("cross_backend"))
    _run("tensorflow", folder, *CONFIGS)  # writes the initial weights
    _run("jax", folder, *CONFIGS)
    _run("tensorflow", folder, "--load", *LOADED)
    _run("jax", folder, "--load", *LOADED)
    return folder


def _load(folder, config, suffix):
    return np.load(os.path.join(folder, f"{config.replace(':', '_')}.{suffix}.npz"))


@pytest.mark.parametrize("config", CONFIGS)
def test_tensorflow_and_jax_train_alike(runs, config):
    tf_run, jax_run = _load(runs, config, "tensorflow"), _load(runs, config, "jax")
    initial = np.load(cross_backend_run.initial_weights(runs, config.split(":")))
    assert sorted(tf_run.files) == sorted(jax_run.files)
    assert not np.allclose(tf_run["w0"], initial["w0"], atol=1e-3)  # training moved the trunk
    for key in tf_run.files:
        np.testing.assert_allclose(jax_run[key], tf_run[key], rtol=1e-5, atol=1e-5,
                                   err_msg=f"{config}: {key}")


@pytest.mark.parametrize("config", LOADED)
def test_keras_files_load_across_backends(runs, config):
    for saved, loading in (("tensorflow", "jax"), ("jax", "tensorflow")):
        original, loaded = _load(runs, config, saved), _load(runs, config, f"{loading}.loaded")
        np.testing.assert_allclose(loaded["prediction"], original["prediction"], rtol=1e-5,
                                   atol=1e-6, err_msg=f"{config}: saved on {saved}")
        for key in loaded.files:
            if key.startswith("s"):
                np.testing.assert_array_equal(loaded[key], original[key], err_msg=key)
