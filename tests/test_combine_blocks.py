"""`combine_blocks`: a gradient method combines per-task gradients given per tensor
(blocks of shape (K,) + the tensor's shape) as it combines the same gradients as one
K x P matrix: for MGDA against the float64 min-norm point of the whole matrix, for
GradDrop (which needs the matrix itself) against its own result on that matrix.
`combine_loss_scaled`: blocks that carry a loss scale give the method's weights of the
unscaled blocks and the scaled combination, in the blocks' dtype."""

import numpy as np
import pytest

from gradient_references import min_norm_point, opposed_family
from keras_mtl.backend.common import combine_blocks, combine_loss_scaled
from keras_mtl.weighting.graddrop import GradDrop
from keras_mtl.weighting.mgda import MGDA

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def _blocks(matrix):
    """The columns of the K x P `matrix` split into blocks shaped (K,) + SHAPES[i]."""
    blocks, offset = [], 0
    for shape in SHAPES:
        size = int(np.prod(shape))
        blocks.append(matrix[:, offset:offset + size].reshape((len(matrix),) + shape))
        offset += size
    return blocks


def _built(method, k):
    method.build((k,))
    return method


@pytest.mark.parametrize("seed", [0, 1])
def test_gramian_method_on_blocks_is_the_min_norm_point_of_the_whole_matrix(seed):
    k = 4
    matrix = opposed_family(k, seed, cosine=-0.8, ratio=30.0, p=23)  # 23 = 12 + 5 + 6
    blocks = _blocks(matrix)
    combined, weights, residual = combine_blocks(
        _built(MGDA(), k), blocks, np.ones(k, "float32"), None)
    expected_weights = k * min_norm_point(matrix)  # MGDA's weights sum to K
    scale = np.abs(expected_weights).max()
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=1e-4 * scale)
    weights64 = np.asarray(weights, "float64")
    for block, part in zip(blocks, combined):
        assert tuple(part.shape) == block.shape[1:]
        expected = np.tensordot(weights64, block.astype("float64"), axes=1)
        np.testing.assert_allclose(np.asarray(part), expected, rtol=1e-5,
                                   atol=1e-6 * np.abs(expected).max())
    assert float(residual) < 1e-3


def test_matrix_method_on_blocks_is_the_same_as_on_the_matrix():
    k = 3
    matrix = opposed_family(k, 2, cosine=-0.5, p=23)
    losses = np.ones(k, "float32")
    combined, weights, residual = combine_blocks(
        _built(GradDrop(seed=7), k), _blocks(matrix), losses, None)
    (flat,), flat_weights, _ = combine_blocks(_built(GradDrop(seed=7), k), [matrix], losses,
                                              None)
    assert residual is None
    np.testing.assert_allclose(
        np.concatenate([np.asarray(part).reshape(-1) for part in combined]), np.asarray(flat),
        rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(weights), np.asarray(flat_weights), rtol=1e-6)
    for block, part in zip(_blocks(matrix), combined):
        assert tuple(part.shape) == block.shape[1:]


def test_scaled_float16_blocks_reach_the_method_unscaled_and_combine_scaled():
    k, scale = 3, 1024.0
    matrix = opposed_family(k, 3, cosine=-0.6, ratio=4.0, p=23)
    seen = []

    class Recording(MGDA):
        def solve_gramian(self, gram, losses, present=None):
            seen.append(np.asarray(gram, "float64"))
            return super().solve_gramian(gram, losses, present)

    scaled = [(scale * b).astype("float16") for b in _blocks(matrix)]
    combined, weights, _ = combine_loss_scaled(_built(Recording(), k), scaled, np.ones(k, "float32"),
                                            None, np.float32(scale))
    unscaled = np.concatenate([b.reshape(k, -1) for b in scaled], axis=1).astype("float64") / scale
    np.testing.assert_allclose(seen[0], unscaled @ unscaled.T, rtol=1e-5,
                               atol=1e-6 * np.abs(seen[0]).max())
    expected_weights = k * min_norm_point(unscaled)
    np.testing.assert_allclose(np.asarray(weights), expected_weights,
                               atol=1e-3 * np.abs(expected_weights).max())
    weights64 = np.asarray(weights, "float64")
    for block, part in zip(scaled, combined):
        assert part.dtype == "float16" and tuple(part.shape) == block.shape[1:]
        expected = np.tensordot(weights64, block.astype("float64"), axes=1)
        np.testing.assert_allclose(np.asarray(part, "float64"), expected, rtol=2e-3,
                                   atol=2e-3 * np.abs(expected).max())
