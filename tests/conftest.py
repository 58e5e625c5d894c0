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
    config.addinivalue_line(
        "markers", "peers: agreement with another library (pycocotools, TorchJD with "
        "`pip install .[peers]`, ...), skipped where it is not installed; `-m peers` runs these alone")


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


@keras.saving.register_keras_serializable(package="keras_mtl_tests")
def _rmse(y, p):
    return keras.ops.sqrt(keras.ops.mean(keras.ops.square(y - p)))


@pytest.fixture
def zero_error_model():
    """Factory of a two-task model whose task "b" (RMSE) has, on zero inputs and zero
    labels, a finite loss (0) and a NaN gradient (the derivative of sqrt at 0). Not
    `two_task_model`, whose biases, once trained, move predictions off 0: without
    biases, zero inputs predict exactly 0."""
    def make(**compile_args):
        inputs = keras.Input((8,))
        h = keras.layers.Dense(16, activation="relu", use_bias=False, name="trunk")(inputs)
        outputs = {n: keras.layers.Dense(k, use_bias=False, name=n)(h)
                   for n, k in (("a", 3), ("b", 1))}
        model = keras_mtl.MultiTaskModel(inputs=inputs, outputs=outputs, tasks=[
            keras_mtl.Task("a", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
            keras_mtl.Task("b", loss=_rmse)])
        model.compile(optimizer="adam", task_optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      **compile_args)
        return model
    return make


@pytest.fixture
def zero_error_data(two_task_data):
    """`(x, y)` of `two_task_data` with zero labels for task "b" and zero inputs in the
    batch of 8 at index `zero_batch`: `zero_error_model`'s non-finite step."""
    def make(zero_batch, n=32):
        x, y = two_task_data(n)
        y["b"][:] = 0.0
        x[zero_batch * 8:(zero_batch + 1) * 8] = 0.0
        return x, y
    return make


@pytest.fixture
def assert_skipped_as_if_absent(zero_error_data):
    """Checks that a model from `make()` (compiled with on_nonfinite="skip") trained on
    `zero_error_data`, whose third batch has finite losses and a NaN gradient, ends as
    one trained without that batch: the same loss history, the same variables (the
    model's, its optimizer's, its weighting method's)."""
    def check(make):
        x, y = zero_error_data(zero_batch=2)
        keep = np.r_[0:16, 24:32]
        runs = []
        for data in ((x, y), (x[keep], {k: v[keep] for k, v in y.items()})):
            keras.utils.set_random_seed(0)
            model = make()
            history = model.fit(*data, batch_size=8, epochs=2, shuffle=False, verbose=0).history
            state = model.variables + model.optimizer.variables + model.weighting.variables
            runs.append((history["loss"], [(v.path, v.numpy()) for v in state]))
        (losses, state), (reference_losses, reference) = runs
        assert np.all(np.array(losses) > 0)
        np.testing.assert_allclose(losses, reference_losses, rtol=1e-6)
        for (path, value), (_, expected) in zip(state, reference):
            np.testing.assert_allclose(value, expected, rtol=1e-6, err_msg=path)
    return check
