"""ContrastiveLoss and TripletLoss against loop-based float64 references
(`metric_learning_references.py`) on batches with several identities, tied
distances, masked and weighted examples, and batches without a valid pair."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import metric_learning_references as ref
from keras_mtl.losses import ContrastiveLoss, TripletLoss


def _batch(seed=0, n=14, dim=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    embeddings = rng.normal(size=(n, dim)).astype("float32")
    # Ties: example 1 duplicates example 0, and 3 is at the same distance from 2 as 4 is.
    embeddings[1] = embeddings[0]
    embeddings[4] = 2 * embeddings[2] - embeddings[3]
    weights = rng.choice([0.0, 1.0, 0.5, 2.0], size=n, p=[0.25, 0.45, 0.15, 0.15]).astype("float32")
    return labels, embeddings, weights


def _masked_mean(loss, labels, embeddings, weights):
    """The task loss as the model computes it: Keras' reduction (sum over the batch
    size) rescaled to the mean over the sample weights."""
    value = float(loss(labels, embeddings, sample_weight=weights))
    return value * len(labels) / float(np.sum(weights))


TRIPLET_CASES = [
    dict(mining="batch_hard", margin=0.5),
    dict(mining="batch_hard", margin=1.5, squared=True),
    dict(mining="batch_hard", margin=0.2, normalize=True),
    dict(mining="batch_hard", margin=0.2, soft_margin=True),
    dict(mining="batch_all", margin=0.5),
    dict(mining="batch_all", margin=2.0, squared=True, normalize=True),
    dict(mining="batch_all", margin=0.2, soft_margin=True),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.5, 3.0])
def test_contrastive_matches_reference(seed, margin):
    labels, embeddings, weights = _batch(seed)
    loss = ContrastiveLoss(margin=margin)
    np.testing.assert_allclose(_masked_mean(loss, labels, embeddings, weights),
                               ref.contrastive(labels, embeddings, weights, margin), rtol=1e-5)
    np.testing.assert_allclose(float(loss(labels, embeddings)),
                               ref.contrastive(labels, embeddings, np.ones(len(labels)), margin),
                               rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", TRIPLET_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_triplet_matches_reference(seed, case):
    labels, embeddings, weights = _batch(seed)
    loss = TripletLoss(**case)
    np.testing.assert_allclose(_masked_mean(loss, labels, embeddings, weights),
                               ref.triplet(labels, embeddings, weights, **case), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(loss(labels[:, None], embeddings)),
                               ref.triplet(labels, embeddings, np.ones(len(labels)), **case),
                               rtol=1e-5, atol=1e-7)


def _reference_gradient(fn, embeddings, step=1e-6):
    e = embeddings.astype(np.float64)
    grad = np.zeros_like(e)
    for index in np.ndindex(e.shape):
        up, down = e.copy(), e.copy()
        up[index] += step
        down[index] -= step
        grad[index] = (fn(up) - fn(down)) / (2 * step)
    return grad


@pytest.mark.parametrize("name", ["contrastive", "batch_hard", "batch_all"])
def test_gradients_match_finite_differences_of_the_reference(name):
    rng = np.random.default_rng(5)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3])
    embeddings = rng.normal(size=(9, 3)).astype("float32")
    weights = np.array([1, 1, 0, 1, 2, 1, 0.5, 1, 1], "float32")
    if name == "contrastive":
        loss, fn = ContrastiveLoss(margin=2.0), lambda e: ref.contrastive(labels, e, weights, 2.0)
    else:
        loss = TripletLoss(name, margin=1.0)
        fn = lambda e: ref.triplet(labels, e, weights, name, 1.0)
    x = tf.constant(embeddings)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(labels, x, sample_weight=weights) * len(labels) / weights.sum()
    np.testing.assert_allclose(tape.gradient(value, x).numpy(), _reference_gradient(fn, embeddings),
                               rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("loss", [ContrastiveLoss(), TripletLoss("batch_hard"), TripletLoss("batch_all")],
                         ids=["contrastive", "batch_hard", "batch_all"])
def test_no_valid_pair_gives_zero_with_finite_gradients(loss):
    embeddings = tf.constant(np.random.default_rng(0).normal(size=(5, 3)).astype("float32"))
    triplet = not isinstance(loss, ContrastiveLoss)
    cases = [
        # One labelled example: no pair at all.
        (np.array([0, 0, 1, 1, 2]), np.array([0, 0, 1, 0, 0], "float32")),
        # Nothing labelled.
        (np.array([0, 0, 1, 1, 2]), np.zeros(5, "float32")),
    ]
    if triplet:
        # Pairs, but no triplet: every identity differs, or all share one.
        cases += [(np.arange(5), None), (np.zeros(5, int), None)]
    for labels, weights in cases:
        with tf.GradientTape() as tape:
            tape.watch(embeddings)
            value = loss(labels, embeddings, sample_weight=weights)
        grad = tape.gradient(value, embeddings)
        assert float(value) == 0.0
        assert grad is None or np.all(np.isfinite(grad.numpy())) and np.all(grad.numpy() == 0)


def test_masked_examples_do_not_matter():
    labels, embeddings, weights = _batch(3)
    moved = embeddings.copy()
    moved[weights == 0] += 100.0
    for loss in (ContrastiveLoss(), TripletLoss("batch_hard"), TripletLoss("batch_all")):
        assert float(loss(labels, embeddings, weights)) == pytest.approx(float(loss(labels, moved, weights)),
                                                                        rel=1e-6)


def test_config_round_trip_and_argument_errors():
    for loss in (ContrastiveLoss(margin=0.7), TripletLoss("batch_all", margin=0.3, squared=True,
                                                          normalize=True, soft_margin=True)):
        restored = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="mining"):
        TripletLoss("semi_hard")
    with pytest.raises(ValueError, match="margin"):
        ContrastiveLoss(margin=0)
    with pytest.raises(TypeError, match="normalize"):
        TripletLoss(normalize="yes")
    with pytest.raises(ValueError, match="y_pred.shape"):
        ContrastiveLoss()(np.zeros(4), np.zeros((4, 2, 2)))


def test_reductions():
    labels, embeddings, weights = _batch(4)
    expected = ref.triplet(labels, embeddings, weights, "batch_hard", 0.5)
    per_example = TripletLoss("batch_hard", margin=0.5, reduction="none")(labels, embeddings, weights)
    assert per_example.shape == (len(labels),)
    np.testing.assert_allclose(float(np.sum(per_example)) / weights.sum(), expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(TripletLoss("batch_hard", margin=0.5, reduction="mean_with_sample_weight")(
            labels, embeddings, weights[:, None])), expected, rtol=1e-5)
