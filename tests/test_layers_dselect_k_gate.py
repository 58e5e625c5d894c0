"""`DSelectKGate` against a float64 numpy reference written from Hazimeh et al. (2021)."""

import keras
import numpy as np
import pytest

from keras_mtl.layers import DSelectKGate
from keras_mtl.layers.dselect_k_gate import smooth_step


def _smooth_step(t, gamma):
    """Eq. 2, piece by piece."""
    out = np.empty_like(t)
    for i, v in np.ndenumerate(t):
        if v <= -gamma / 2:
            out[i] = 0.0
        elif v >= gamma / 2:
            out[i] = 1.0
        else:
            out[i] = -2 * v ** 3 / gamma ** 3 + 3 * v / (2 * gamma) + 0.5
    return out


def _selector(z, num_experts, gamma):
    """r(z)_l for one selector: the probability of the bit string of l, most
    significant bit first, with bit j = 1 having probability S(z_j)."""
    m = len(z)
    s = _smooth_step(np.asarray(z, np.float64), gamma)
    out = []
    for l in range(num_experts):
        bits = [int(b) for b in format(l, f"0{m}b")]
        out.append(np.prod([s[j] if bit else 1 - s[j] for j, bit in enumerate(bits)]))
    return np.array(out)


def _reference(layer, gate_input):
    """Per example: r (k, E), softmax weights (k,), combined q (E,), the penalty."""
    k, n, gamma = layer.num_nonzeros, layer.num_experts, layer.gamma
    m = int(np.ceil(np.log2(n)))
    flat = gate_input.reshape(len(gate_input), -1).astype(np.float64)
    if layer.per_example:
        z_all = flat @ layer.z_kernel.numpy().astype(np.float64) + layer.z_bias.numpy()
        a_all = flat @ layer.alpha_kernel.numpy().astype(np.float64) + layer.alpha_bias.numpy()
    else:
        z_all = np.tile(layer.z.numpy().reshape(1, -1), (len(flat), 1)).astype(np.float64)
        a_all = np.tile(layer.alpha.numpy()[None], (len(flat), 1)).astype(np.float64)
    rs, alphas, qs, penalties = [], [], [], []
    for z, a in zip(z_all, a_all):
        r = np.stack([_selector(z[i * m:(i + 1) * m], n, gamma) for i in range(k)])
        w = np.exp(a - a.max())
        w /= w.sum()
        rs.append(r), alphas.append(w), qs.append(w @ r)
        entropy = -sum(p * np.log(p + 1e-6) for p in r.ravel())
        reach = 0.0 if n == 2 ** m else sum(1 / r[i].sum() for i in range(k))
        penalties.append(layer.entropy_regularization * entropy + reach)
    assert np.all(np.isfinite(penalties))
    return np.array(rs), np.array(alphas), np.array(qs), np.mean(penalties)


def test_smooth_step_matches_the_formula_and_its_ends():
    t = np.array([-2.0, -0.5, -0.49, -0.3, 0.0, 0.1, 0.37, 0.5, 0.7], np.float32)
    for gamma in (1.0, 2.5):
        got = np.asarray(smooth_step(t, gamma))
        np.testing.assert_allclose(got, _smooth_step(t.astype(np.float64), gamma), atol=1e-6)
    assert np.asarray(smooth_step(np.float32(0.5), 1.0)) == 1.0
    assert np.asarray(smooth_step(np.float32(-0.5), 1.0)) == 0.0


@pytest.mark.parametrize("num_experts,num_nonzeros,per_example",
                         [(4, 2, True), (8, 3, True), (5, 2, True), (4, 2, False), (3, 1, False)])
def test_selectors_weights_mixture_and_penalty_match_numpy(num_experts, num_nonzeros, per_example):
    rng = np.random.default_rng(num_experts * 10 + num_nonzeros)
    gate_input = rng.normal(size=(6, 2, 3)).astype("float32")
    experts = [rng.normal(size=(6, 4)).astype("float32") for _ in range(num_experts)]
    layer = DSelectKGate(num_nonzeros, gamma=1.5, entropy_regularization=0.3, per_example=per_example,
                         alpha_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=2))
    layer.build([gate_input.shape] + [e.shape for e in experts])
    # Logits partly in the smooth-step's cubic region (|z| < 0.75), partly saturated;
    # without E = 2^m, the first bit leans to 0 so that every selector reaches experts.
    m = int(np.ceil(np.log2(num_experts)))  # the binary code's length
    lean = np.tile([-0.8 if num_experts & (num_experts - 1) else 0.0] + [0.0] * (m - 1), num_nonzeros)
    if per_example:
        layer.z_kernel.assign(rng.normal(scale=0.4, size=layer.z_kernel.shape))
        layer.z_bias.assign(rng.uniform(-0.6, 0.6, size=layer.z_bias.shape) + lean)
    else:
        layer.z.assign(np.array([-1.2, 0.3, 0.5, -0.9, 0.1, 0.7] * 4)[:num_nonzeros * m].reshape(num_nonzeros, m)
                       + lean.reshape(num_nonzeros, m))
    mixture, weights = (np.asarray(t) for t in layer([gate_input, *experts]))
    r, alpha = (np.asarray(t) for t in layer.selectors(gate_input))
    r_ref, alpha_ref, q_ref, penalty_ref = _reference(layer, gate_input)
    assert 0 < np.mean((r_ref > 0) & (r_ref < 1)) < 1  # some selectors exactly 0 or 1
    np.testing.assert_allclose(r, r_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(alpha, alpha_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights, q_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixture, np.einsum("be,ebf->bf", q_ref, np.stack(experts)), rtol=1e-5, atol=1e-5)
    assert np.count_nonzero(weights, axis=1).max() <= 2 ** np.ceil(np.log2(num_experts))
    if num_experts & (num_experts - 1) == 0:
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    else:
        assert np.all(weights.sum(axis=1) <= 1.0 + 1e-6)
    np.testing.assert_allclose(float(layer.regularization(layer.selectors(gate_input)[0])), penalty_ref,
                               rtol=1e-5)
    layer([gate_input, *experts], training=True)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), penalty_ref, rtol=1e-5)


def test_saturated_selectors_pick_at_most_k_experts():
    """Logits beyond +-gamma/2 give one-hot selectors: exactly the chosen experts."""
    layer = DSelectKGate(2, per_example=False)
    experts = [np.full((2, 3), float(e), "float32") for e in range(8)]
    layer([np.zeros((2, 1), "float32"), *experts])
    layer.z.assign(np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]], "float32"))  # experts 5 and 3
    layer.alpha.assign(np.array([0.0, np.log(3.0)], "float32"))
    mixture, weights = (np.asarray(t) for t in layer([np.zeros((2, 1), "float32"), *experts]))
    expected = np.zeros(8)
    expected[[5, 3]] = [0.25, 0.75]
    np.testing.assert_allclose(weights, np.tile(expected, (2, 1)), atol=1e-7)
    np.testing.assert_allclose(mixture, 0.25 * 5 + 0.75 * 3, atol=1e-6)


def test_gradients_reach_the_gate_in_the_cubic_region():
    import tensorflow as tf

    layer = DSelectKGate(2, entropy_regularization=0.1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3)).astype("float32")
    experts = [tf.constant(rng.normal(size=(4, 2)).astype("float32")) for _ in range(4)]
    with tf.GradientTape() as tape:
        mixture, _ = layer([x, *experts], training=True)
        loss = tf.reduce_sum(mixture ** 2) + sum(layer.losses)
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g is not None and np.all(np.isfinite(g)) and np.any(g != 0) for g in grads)


def test_config_round_trip_and_errors():
    layer = DSelectKGate(3, gamma=2.0, entropy_regularization=0.5, per_example=False, name="g")
    clone = DSelectKGate.from_config(layer.get_config())
    assert (clone.name, clone.num_nonzeros, clone.gamma, clone.entropy_regularization, clone.per_example) == (
        "g", 3, 2.0, 0.5, False)
    for bad, argument in ((dict(num_nonzeros=0), "num_nonzeros"), (dict(num_nonzeros=2, gamma=0.0), "gamma"),
                          (dict(num_nonzeros=2, entropy_regularization=-1.0), "entropy_regularization")):
        with pytest.raises(ValueError, match=f"Received: {argument}="):
            DSelectKGate(**bad)
    with pytest.raises(ValueError, match="E >= 2"):
        DSelectKGate(1)([np.zeros((1, 2), "float32"), np.zeros((1, 3), "float32")])
