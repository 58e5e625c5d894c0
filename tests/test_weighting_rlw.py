"""RLW: softmax of standard-normal draws, seeded, restored from .keras files."""

import numpy as np
import tensorflow as tf
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny, tiny_data

from keras_mtl.weighting import RLW


def test_draws_are_softmax_of_standard_normals():
    layer = RLW(seed=7)
    layer.build((3,))
    draw = tf.function(lambda: layer.task_weights(tf.ones(3), training=True))
    weights = np.array([draw().numpy() for _ in range(3000)])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(weights > 0)
    # log(w_i / w_j) = z_i - z_j ~ N(0, 2) for independent standard normals z.
    log_ratios = np.log(weights[:, 0] / weights[:, 1]), np.log(weights[:, 1] / weights[:, 2])
    for r in log_ratios:
        assert abs(r.mean()) < 0.1 and abs(r.var() - 2.0) < 0.25
    np.testing.assert_allclose(weights.mean(axis=0), 1 / 3, atol=0.02)
    assert len({tuple(w) for w in weights}) == len(weights)
    np.testing.assert_allclose(layer.task_weights(tf.ones(3)).numpy(), 1 / 3)


def test_same_seed_same_draws_other_seed_other_draws():
    def draws(seed):
        layer = RLW(seed=seed)
        layer.build((4,))
        return [layer.combine(tf.ones(4), training=True)[1].numpy() for _ in range(3)]

    np.testing.assert_array_equal(draws(3), draws(3))
    assert not np.allclose(draws(3), draws(4))


def test_fit_is_reproducible_and_round_trip_continues_the_draws(tmp_path):
    model, history = fit_tiny(RLW(seed=11), epochs=2)
    _, again = fit_tiny(RLW(seed=11), epochs=2)
    assert_weights_logged(history, 2)
    for task in model.task_names:
        assert history.history[f"{task}_weight"] == again.history[f"{task}_weight"]
    loaded = assert_round_trip(model, tmp_path)  # trains one more step
    x, y = tiny_data(n=16, seed=1)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    np.testing.assert_array_equal(loaded.weighting.seed_generator.state.numpy(),
                                  model.weighting.seed_generator.state.numpy())
    assert loaded.weighting.seed == 11
