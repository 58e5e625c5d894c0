"""`MaxUnpooling2D` against a numpy loop over pooling windows."""

import numpy as np
import pytest

from keras_mtl.layers import MaxUnpooling2D


def _unpool(values, pooled_from):
    out = np.zeros_like(pooled_from)
    b, h, w, c = values.shape
    for n in range(b):
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    window = pooled_from[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, k]
                    r, s = np.unravel_index(np.argmax(window), (2, 2))  # first maximum, row-major
                    out[n, 2 * i + r, 2 * j + s, k] = values[n, i, j, k]
    return out


def test_matches_numpy_with_ties():
    rng = np.random.default_rng(0)
    pooled_from = rng.integers(0, 3, size=(2, 6, 4, 3)).astype("float32")  # many ties
    values = rng.normal(size=(2, 3, 2, 3)).astype("float32")
    got = MaxUnpooling2D()([values, pooled_from]).numpy()
    np.testing.assert_array_equal(got, _unpool(values, pooled_from))
    assert np.count_nonzero(got) == np.count_nonzero(values)


def test_inverts_max_pooling_positions():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 4, 4, 2)).astype("float32")
    pooled = x.reshape(1, 2, 2, 2, 2, 2).max(axis=(2, 4))
    restored = MaxUnpooling2D()([pooled, x]).numpy()
    at_maximum = x == pooled.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(restored, np.where(at_maximum, x, 0.0))


def test_shape_error():
    with pytest.raises(ValueError, match="twice the height"):
        MaxUnpooling2D()([np.zeros((1, 2, 2, 1), "float32"), np.zeros((1, 6, 4, 1), "float32")])
