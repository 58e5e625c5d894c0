"""The TensorFlow, JAX and PyTorch trainers agree: the same model, initial weights and
batches trained for 12 SGD (or Adam) steps on each backend end with the same weights,
weighting state, logged task losses and predictions (to 1e-5) for every
deterministic weighting method, both gradient modes, masks, absent tasks under
`freeze_absent_tasks`, separate optimizers, and a trunk with regularizers and
batch normalization; a `.keras` file saved on one backend
loads on each other one and predicts the same. Each backend trains in its own process
(`tests/cross_backend_run.py`); JAX and PyTorch are compared with TensorFlow where they
are installed."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow

OTHERS = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]
BACKENDS = ["tensorflow"] + OTHERS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cross_backend_run  # noqa: E402

_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cross_backend_run.py")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every deterministic method (GradDrop, GradVac, PCGrad and RLW draw random numbers,
# which differ between backends).
LOSS_METHODS = ["equal", "fixed", "dtp", "dwa", "uncertainty", "gradnorm", "gls", "famo",
                "imtl_l"]
GRADIENT_METHODS = ["aligned_mtl", "cagrad", "imtl", "mgda", "nash_mtl", "config", "dualproj",
                    "krum", "trimmed_mean", "upgrad"]
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
    if not OTHERS:
        pytest.skip("needs JAX or PyTorch (pip install '.[jax]')")
    folder = str(tmp_path_factory.mktemp("cross_backend"))
    for backend in BACKENDS:  # TensorFlow first: it writes the initial weights
        _run(backend, folder, *CONFIGS)
    for backend in BACKENDS:
        _run(backend, folder, "--load", *LOADED)
    return folder


def _load(folder, config, suffix):
    return np.load(os.path.join(folder, f"{config.replace(':', '_')}.{suffix}.npz"))


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("config", CONFIGS)
def test_backends_train_like_tensorflow(runs, config, backend):
    if backend not in OTHERS:
        pytest.skip(f"{backend} is not installed")
    tf_run, other = _load(runs, config, "tensorflow"), _load(runs, config, backend)
    initial = np.load(cross_backend_run.initial_weights(runs, config.split(":")))
    assert sorted(tf_run.files) == sorted(other.files)
    assert not np.allclose(tf_run["w0"], initial["w0"], atol=1e-3)  # training moved the trunk
    for key in tf_run.files:
        np.testing.assert_allclose(other[key], tf_run[key], rtol=1e-5, atol=1e-5,
                                   err_msg=f"{config} on {backend}: {key}")


@pytest.mark.parametrize("config", LOADED)
def test_keras_files_load_across_backends(runs, config):
    for saved in BACKENDS:
        for loading in BACKENDS:
            if loading == saved:
                continue
            original = _load(runs, config, saved)
            loaded = _load(runs, config, f"{saved}.{loading}.loaded")
            np.testing.assert_allclose(loaded["prediction"], original["prediction"], rtol=1e-5,
                                       atol=1e-6, err_msg=f"{config}: saved on {saved}, "
                                       f"loaded on {loading}")
            for key in loaded.files:
                if key.startswith("s"):
                    np.testing.assert_array_equal(loaded[key], original[key], err_msg=key)
