"""JAX: training data of unknown length that turns out empty is the same error as on
TensorFlow (tests/test_reliability.py), not a bare StopIteration."""

import numpy as np
import pytest
import tensorflow as tf

from weighting_utils import tiny_data, tiny_model


def test_an_empty_pipeline_of_unknown_length_names_the_training_data():
    model = tiny_model()
    model.compile(optimizer="adam")
    x, y = tiny_data(16)
    empty = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda *_: False).batch(4)
    assert int(empty.cardinality()) < 0
    with pytest.raises(ValueError, match="The training dataset is empty"):
        model.fit(empty, epochs=1, verbose=0)
    # The model is left as it was: a later fit on real data trains.
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][0])
