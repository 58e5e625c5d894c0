"""Loaders and pipelines: a file rewritten on disk is read again, and bad inputs are
errors naming the task, argument or file (before iteration where possible)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_mtl.datasets import census_income, interleave, pk_batches
from test_datasets_validation import _census, _census_row


def test_census_file_rewritten_on_disk_is_read_again(tmp_path):
    folder, file = _census(tmp_path, "data", _census_row(), _census_row())
    assert len(census_income.read_table(str(file))) == 2
    # Same path, same second: the content changed, and so does the size.
    file.write_text("".join(_census_row() + "\n" for _ in range(3)))
    assert len(census_income.read_table(str(file))) == 3
    # Same size, a new modification time: read again.
    file.write_text("".join(_census_row(income_50k="50000+.") + "\n" for _ in range(3)))
    rows = census_income.read_table(str(file))
    assert (rows[:, census_income.COLUMNS.index("income_50k")] == "50000+.").all()


@pytest.mark.parametrize("rows", [5, 7])
def test_pk_batches_needs_one_data_row_per_label(rows):
    labels = np.repeat(np.arange(3), 2)
    with pytest.raises(ValueError, match=rf"data must have one row per label \(6 labels\).*\({rows}, 2\)"):
        pk_batches((np.zeros((rows, 2)), {"t": labels}), labels, 2, 2, num_batches=3)


def test_interleave_names_an_empty_task_dataset():
    full = tf.data.Dataset.from_tensor_slices((np.zeros((4, 2), "float32"), np.zeros(4))).batch(2)
    for sampling in ("proportional", "uniform"):
        with pytest.raises(ValueError, match=r"task\(s\) \['b'\] is empty"):
            interleave({"a": full, "b": full.take(0)}, sampling=sampling, steps_per_epoch=2)
