"""PairDistanceAUC, VerificationAccuracy and RecallAtOne against loop-based numpy
references, accumulated over batches with masks and tied distances."""

import keras
import numpy as np
import pytest

import metric_learning_references as ref
from keras_mtl.metrics import PairDistanceAUC, RecallAtOne, VerificationAccuracy


def _batches(seed=0):
    rng = np.random.default_rng(seed)
    batches = []
    for n in (12, 9, 16):
        labels = rng.integers(0, 4, n)
        # Separable-ish: identity centres plus noise, so the AUC is far from 0.5.
        embeddings = (np.eye(4, 3)[labels] * 1.5 + rng.normal(size=(n, 3))).astype("float32")
        # Ties: duplicated embeddings give equal distances within and across pairs.
        embeddings[1] = embeddings[0]
        embeddings[3] = embeddings[2]
        weights = (rng.random(n) > 0.2).astype("float32")
        batches.append((labels, embeddings, weights))
    return batches


def _check(metric, reference, seed):
    numerator = denominator = 0.0
    for labels, embeddings, weights in _batches(seed):
        metric.update_state(labels, embeddings, sample_weight=weights)
        num, den = reference(labels, embeddings, weights)
        numerator, denominator = numerator + num, denominator + den
    assert denominator > 0 and 0 < numerator < denominator
    np.testing.assert_allclose(float(metric.result()), numerator / denominator, rtol=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pair_distance_auc(seed):
    _check(PairDistanceAUC(), ref.auc_counts, seed)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("threshold", [1.0, 2.5])
def test_verification_accuracy(seed, threshold):
    _check(VerificationAccuracy(threshold),
           lambda *batch: ref.verification_counts(*batch, threshold), seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recall_at_one(seed):
    _check(RecallAtOne(), ref.recall_at_one_counts, seed)


def test_exact_values_on_a_small_case():
    # 1-D embeddings: identity 0 at 0 and 1, identity 1 at 3 and 4, identity 2 at 1.
    labels = np.array([0, 0, 1, 1, 2])
    embeddings = np.array([[0.0], [1.0], [3.0], [4.0], [1.0]], "float32")
    auc, recall, accuracy = PairDistanceAUC(), RecallAtOne(), VerificationAccuracy(1.0)
    for m in (auc, recall, accuracy):
        m.update_state(labels, embeddings)
    # Positive pairs (0,1) and (2,3) at distance 1; the 8 negative pairs at 3, 4, 1,
    # 2, 3, 0, 2, 3: each positive is closer than 6, tied with 1.
    assert float(auc.result()) == pytest.approx(2 * 6.5 / 16)
    # Queries 0..3 (identity 2 has one example): 0 ties 1 (same) and 4 (other) at 1,
    # 1's nearest is 4 (other, at 0), 2's and 3's are each other.
    assert float(recall.result()) == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    # At threshold 1: both positives accepted, the negatives at 1 and 0 too.
    assert float(accuracy.result()) == pytest.approx(8 / 10)


def test_config_round_trip_and_argument_errors():
    for metric in (PairDistanceAUC(), RecallAtOne(), VerificationAccuracy(0.8)):
        restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
        assert type(restored) is type(metric) and restored.get_config() == metric.get_config()
    with pytest.raises(ValueError, match="threshold"):
        VerificationAccuracy(-1.0)
