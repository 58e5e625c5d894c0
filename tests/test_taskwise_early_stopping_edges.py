"""`TaskwiseEarlyStopping` at its edges: every task stopped, a NaN validation loss, a
monitored task without training labels, a damaged state file."""

import os

import keras
import numpy as np
import pytest

from keras_mtl.callbacks import TaskwiseEarlyStopping, tcdcn_criterion
from weighting_utils import TASKS, tiny_data, tiny_model


def _fit(callback, epochs=6, y_val=None, sample_weight=None):
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = tiny_data(32)
    history = model.fit(x, y, sample_weight=sample_weight, epochs=epochs, batch_size=16,
                        verbose=0, validation_data=(x, y_val or y), callbacks=[callback])
    return model, history.history


def test_training_stops_when_every_task_has_stopped():
    # Every finite criterion exceeds the threshold: all tasks stop at epoch k - 1 = 2.
    stopping = TaskwiseEarlyStopping(list(TASKS), threshold=-1e30, k=3)
    model, history = _fit(stopping)
    assert stopping.stopped_epoch == {t: 2 for t in TASKS}
    assert len(history["loss"]) == 3 and model.stop_training


def test_training_goes_on_while_an_unmonitored_task_is_active():
    stopping = TaskwiseEarlyStopping(["reg", "bin"], threshold=-1e30, k=3)
    _, history = _fit(stopping, epochs=4)
    assert len(history["loss"]) == 4 and history["reg_active"] == [1.0, 1.0, 0.0, 0.0]


def test_a_nan_validation_loss_stops_the_task_with_a_warning():
    assert tcdcn_criterion([3.0, 2.0, 1.5], np.nan, 3, 1.0) == np.inf
    x, y = tiny_data(32)
    y_val = {**y, "reg": np.full_like(y["reg"], np.nan)}
    stopping = TaskwiseEarlyStopping(["reg"], threshold=1e30, k=3)
    with pytest.warns(UserWarning, match=r"task 'reg'.*validation loss nan at epoch 2"):
        _, history = _fit(stopping, epochs=4, y_val=y_val)
    assert stopping.stopped_epoch == {"reg": 2}
    assert history["reg_stopping_criterion"][2] == np.inf


def test_a_monitored_task_without_training_labels_is_an_error():
    x, y = tiny_data(32)
    weights = {"cls": np.ones(32), "reg": np.zeros(32), "bin": np.ones(32)}
    with pytest.raises(ValueError, match=r"task 'reg'.*training loss 0\.0 in epoch 0"):
        _fit(TaskwiseEarlyStopping(["reg"], threshold=1.0, k=3), sample_weight=weights)


@pytest.mark.parametrize("content", ["", '{"records": {"0": {"reg": [1.0, ', "[1, 2]",
                                     '{"records": {}}'])
def test_a_damaged_state_file_is_an_error_naming_it(tmp_path, content):
    path = os.path.join(tmp_path, "taskwise_early_stopping.json")
    with open(path, "w") as f:
        f.write(content)
    with pytest.raises(ValueError, match=rf"{path}.*delete it"):
        _fit(TaskwiseEarlyStopping(["reg"], threshold=1.0, k=3, backup_dir=str(tmp_path)))
