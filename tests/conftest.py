import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_mtl  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: the slow tier (multi-replica and multi-worker runs in subprocesses, "
        "sweeps that train every weighting method, task-wise early stopping runs, "
        "applications, full real-data loader checks); "
        "`-m 'not slow'` leaves it out, `-m slow` runs it alone")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield


def _two_tasks(b_units=1, metrics=True, loss_weights=(1.0, 1.0)):
    return [
        keras_mtl.Task("a", head=3, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"] if metrics else None, loss_weight=loss_weights[0]),
        keras_mtl.Task("b", head=b_units, loss="mse", metrics=["mae"] if metrics else None,
                       loss_weight=loss_weights[1]),
    ]


@pytest.fixture
def two_tasks():
    """Factory of the two tasks most tests train: "a", 3 classes (logits, sparse
    cross-entropy, accuracy), and "b", a regression of `b_units` outputs (MSE, MAE)."""
    return _two_tasks


@pytest.fixture
def two_task_model():
    """Factory of a hard-sharing MLP (the "mlp" backbone) on `features` inputs with
    the `two_tasks` heads, uncompiled."""
    def make(features=8, **task_args):
        return keras_mtl.build("hard_sharing", _two_tasks(**task_args), backbone="mlp",
                               input_shape=(features,))
    return make


@pytest.fixture
def two_task_data():
    """Factory of `(x, y)` for `two_task_model`: normal features, uniform class
    indices for "a", normal targets for "b"; the same draws for the same arguments."""
    def make(n=32, features=8, b_units=1, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, features)).astype("float32")
        return x, {"a": rng.integers(0, 3, size=(n,)),
                   "b": rng.normal(size=(n, b_units)).astype("float32")}
    return make
