"""`TaskwiseEarlyStopping` (TCDCN) and the model's task activity: the criterion
against the paper's formula, a task whose validation loss rises on purpose, every
kind of weighting method, and a run interrupted and resumed by `BackupAndRestore`."""

import functools

import keras
import numpy as np
import pytest

import keras_mtl
from keras_mtl.backbones.mlp import mlp
from keras_mtl.callbacks import TaskwiseEarlyStopping, tcdcn_criterion
from weighting_utils import TASKS, tiny_data, tiny_model

pytestmark = pytest.mark.slow


def _paper(train, val, k, lam):
    """Zhang et al. 2014, eq. 5, term by term in float64."""
    strip = np.array(train[-k:], np.float64)
    med = sorted(strip)[len(strip) // 2] if k % 2 else np.mean(sorted(strip)[k // 2 - 1:k // 2 + 1])
    best = min(train)
    return (k * med) / (strip.sum() - k * med) * (val - best) / (lam * best)


def test_criterion_matches_the_papers_formula():
    train = [2.0, 1.5, 1.2, 1.1, 1.05, 1.0]
    # Strip (1.2, 1.1, 1.05, 1.0): median 1.075, sum 4.35 -> 4.3 / 0.05 = 86; (1.3 - 1) / 0.5 = 0.6.
    assert tcdcn_criterion(train, 1.3, 4, 0.5) == pytest.approx(51.6, rel=1e-9)
    rng = np.random.default_rng(0)
    for _ in range(20):
        losses = list(np.cumsum(rng.uniform(0.01, 0.5, size=9))[::-1])
        val, k, lam = rng.uniform(0.0, 3.0), int(rng.integers(3, 8)), rng.uniform(0.1, 2.0)
        expected = _paper(losses, val, k, lam)
        assert tcdcn_criterion(losses, val, k, lam) == pytest.approx(expected, rel=1e-9)
        # Scale-free.
        assert tcdcn_criterion([7 * l for l in losses], 7 * val, k, lam) == pytest.approx(expected, rel=1e-9)


def test_criterion_edges():
    linear = [4.0, 3.0, 2.0, 1.0]  # sum == k * median
    assert tcdcn_criterion(linear, 1.5, 4, 1.0) == np.inf
    assert tcdcn_criterion(linear, 0.5, 4, 1.0) == -np.inf
    assert tcdcn_criterion(linear, 1.0, 4, 1.0) == 0.0
    assert tcdcn_criterion([1.0, 0.9, 0.5], 2.0, 3, 1.0) < 0  # a fall that speeds up
    with pytest.raises(ValueError, match="positive training losses"):
        tcdcn_criterion([1.0, 0.0], 1.0, 2, 1.0)


def _three_task_data(n, seed):
    """`good` generalises; `bad` has random labels, so its validation loss rises."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, {"main": (x @ np.arange(1, 9, dtype="float32") / 8)[:, None],
               "good": x[:, :2].sum(1, keepdims=True),
               "bad": rng.integers(0, 2, (n, 1)).astype("float32")}


def _three_task_model():
    keras.utils.set_random_seed(0)
    tasks = [keras_mtl.Task("main", head=1, loss="mse"), keras_mtl.Task("good", head=1, loss="mse"),
             keras_mtl.Task("bad", loss="binary_crossentropy", head=[
                 keras.layers.Dense(64, activation="relu", name="bad_hidden"),
                 keras.layers.Dense(1, activation="sigmoid", name="bad_out")])]
    model = keras_mtl.build("hard_sharing", tasks, input_shape=(8,), backbone=functools.partial(mlp, units=(32,)))
    model.compile(keras.optimizers.Adam(1e-2))
    return model


class _HeadSnapshots(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.heads = []

    def on_epoch_end(self, epoch, logs=None):
        self.heads.append([v.numpy().copy() for v in self.model.task_variables["bad"]])


EPOCHS = 8


def _fit(model, callbacks, epochs=EPOCHS, initial_epoch=0):
    return model.fit(*_three_task_data(64, 0), validation_data=_three_task_data(64, 1), epochs=epochs,
                     initial_epoch=initial_epoch, batch_size=16, shuffle=False, verbose=0,
                     callbacks=callbacks).history


def test_the_task_whose_validation_loss_rises_stops_and_its_head_freezes():
    model = _three_task_model()
    stopping, heads = TaskwiseEarlyStopping(["good", "bad"], threshold=80.0, k=5), _HeadSnapshots()
    history = _fit(model, [stopping, heads])
    stop = stopping.stopped_epoch["bad"]
    assert stopping.stopped_epoch["good"] is None and stop is not None and stop >= 4
    assert history["val_bad_loss"][stop] > history["val_bad_loss"][0]  # it did rise
    # The logged criterion is the paper's, from the logged losses.
    for epoch in range(4, stop + 1):
        expected = _paper(history["bad_loss"][:epoch + 1], history["val_bad_loss"][epoch], 5, 1.0)
        assert history["bad_stopping_criterion"][epoch] == pytest.approx(expected, rel=1e-6)
    assert np.isnan(history["bad_stopping_criterion"][:4]).all()
    assert history["bad_active"] == [1.0] * stop + [0.0] * (EPOCHS - stop)
    assert history["good_active"] == [1.0] * EPOCHS
    # From the next epoch on: weight 0, head frozen, loss still logged; the others train.
    assert all(w == 0.0 for w in history["bad_weight"][stop + 1:])
    assert all(w == 1.0 for w in history["bad_weight"][:stop + 1])
    for later in heads.heads[stop + 1:]:
        for old, new in zip(heads.heads[stop], later):
            np.testing.assert_array_equal(new, old)
    assert np.isfinite(history["bad_loss"]).all()
    assert history["main_loss"][-1] < history["main_loss"][stop]
    activity = dict(zip(model.task_names, model.task_activity().numpy()))
    assert activity == {"main": 1.0, "good": 1.0, "bad": 0.0}


def test_arguments_and_missing_validation_data():
    for kwargs, argument in ((dict(threshold=1.0, k=2), "k"), (dict(threshold=np.nan), "threshold"),
                             (dict(threshold=1.0, importance={"bad": 0.0}), "importance")):
        with pytest.raises(ValueError, match=argument):
            TaskwiseEarlyStopping(["bad"], **kwargs)
    model = _three_task_model()
    with pytest.raises(ValueError, match="unknown task"):
        model.fit(*_three_task_data(16, 0), epochs=1, verbose=0,
                  callbacks=[TaskwiseEarlyStopping(["nope"], threshold=1.0)])
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(*_three_task_data(16, 0), epochs=1, verbose=0,
                  callbacks=[TaskwiseEarlyStopping(["bad"], threshold=1.0)])


# Weighting methods of every kind: loss-based, learned, epoch-level, last-kernel
# gradients, post-step losses, random, and per-task gradients (Gramian or not).
_METHODS = ["equal", "uncertainty", "gradnorm", "famo", "mgda", "pcgrad"]


@pytest.mark.parametrize("name", _METHODS)
def test_an_inactive_task_is_left_out_under_every_kind_of_method(name):
    """An inactive task trains the shared variables exactly as a task without labels
    does, gets weight 0 and keeps its head, under any weighting method."""
    x, y = tiny_data(n=32)
    method = {"pcgrad": lambda: keras_mtl.weighting.PCGrad(seed=3)}
    runs = {}
    for inactive in (True, False):
        keras.utils.set_random_seed(0)
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=method.get(name, lambda: name)())
        head = [v.numpy().copy() for v in model.task_variables["bin"]]
        masks = {t: np.ones(32, "float32") for t in TASKS}
        if inactive:
            model.task_activity().assign([float(t != "bin") for t in model.task_names])
        else:
            masks["bin"] = np.zeros(32, "float32")
        history = model.fit(x, y, sample_weight=masks, batch_size=8, epochs=1, shuffle=False, verbose=0).history
        runs[inactive] = [v.numpy() for v in model.shared_variables]
        for old, new in zip(head, model.task_variables["bin"]):
            np.testing.assert_array_equal(new.numpy(), old)
        if inactive:
            assert history["bin_weight"] == [0.0]
            assert history["bin_loss"][-1] > 0  # still logged
    for a, b in zip(runs[True], runs[False]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError("interrupted")


@functools.lru_cache(maxsize=1)
def _uninterrupted():
    stopping = TaskwiseEarlyStopping(["good", "bad"], threshold=80.0, k=5)
    model = _three_task_model()
    history = _fit(model, [stopping])
    return stopping.stopped_epoch, history, [v.numpy() for v in model.weights]


@pytest.mark.parametrize("at", [3, 7])  # before and after the stop at epoch 5
def test_an_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, at):
    stopped, reference, weights = _uninterrupted()
    assert stopped == {"good": None, "bad": 5}

    def callbacks():
        state, backup = str(tmp_path / "state"), str(tmp_path / "backup")
        return TaskwiseEarlyStopping(["good", "bad"], threshold=80.0, k=5, backup_dir=state), \
            keras.callbacks.BackupAndRestore(backup)

    first, backup = callbacks()
    with pytest.raises(RuntimeError, match="interrupted"):
        _fit(_three_task_model(), [first, backup, _Interrupt(at)])
    # A new process: new model and callbacks, the same folders.
    resumed, backup = callbacks()
    model = _three_task_model()
    history = _fit(model, [resumed, backup])
    assert resumed.stopped_epoch == stopped
    assert history["bad_active"] == reference["bad_active"][at:]
    np.testing.assert_allclose(history["bad_stopping_criterion"], reference["bad_stopping_criterion"][at:],
                               rtol=1e-5)
    for got, want in zip(model.weights, weights):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "state" / "taskwise_early_stopping.json").exists()


def test_task_activity_is_not_saved_with_the_model(tmp_path):
    model = tiny_model()
    model.compile(optimizer="adam")
    model.task_activity().assign([0.0, 1.0, 1.0])
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert len(loaded.weights) == len(model.weights)
    assert "_task_activity" not in loaded.__dict__
    np.testing.assert_array_equal(loaded.task_activity().numpy(), [1.0, 1.0, 1.0])
