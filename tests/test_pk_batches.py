"""`datasets.pk_batches`: P classes x K examples per batch, laid out class by class,
distinct examples within a class, deterministic per seed and new each epoch."""

import numpy as np
import pytest

from keras_mtl.datasets import pk_batches

# Classes 0..5 with 9, 5, 3, 1, 6 and 4 examples (class 3 cannot form a pair).
LABELS = np.repeat([0, 1, 2, 3, 4, 5], [9, 5, 3, 1, 6, 4])
rng = np.random.default_rng(0)
LABELS = LABELS[rng.permutation(len(LABELS))]


def _epochs(dataset, epochs=2):
    return [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(epochs)]


def test_batches_hold_p_classes_of_k_distinct_examples():
    ds = pk_batches((np.arange(len(LABELS)), LABELS), LABELS, 3, 4, num_batches=40, seed=1)
    seen = set()
    for epoch in _epochs(ds):
        assert len(epoch) == 40
        for index, label in epoch:
            assert index.shape == (12,)
            np.testing.assert_array_equal(LABELS[index], label)
            blocks = label.reshape(3, 4)
            assert np.all(blocks == blocks[:, :1]) and len(set(blocks[:, 0])) == 3
            assert 3 not in label
            for block in index.reshape(3, 4):
                c = LABELS[block[0]]
                # Distinct when the class has K examples; class 2 (3 examples) cycles.
                assert len(set(block)) == min(4, int(np.sum(LABELS == c)))
            seen.update(index)
    # Every example of a drawable class turns up.
    assert seen == set(np.flatnonzero(LABELS != 3))


def test_deterministic_per_seed_and_new_each_epoch():
    make = lambda seed: pk_batches({"i": np.arange(len(LABELS))}, LABELS, 2, 3, num_batches=5, seed=seed)
    first, again = make(7), make(7)
    first, again = ([[b["i"].numpy() for b in ds] for _ in range(2)] for ds in (first, again))
    other = [b["i"].numpy() for b in make(8)]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], other)


def test_class_draws_are_uniform():
    ds = pk_batches(np.arange(len(LABELS)), LABELS, 2, 2, num_batches=3000, seed=3)
    firsts = np.array([LABELS[b.numpy()[::2]] for b in ds]).ravel()
    frequencies = np.bincount(firsts, minlength=6)[[0, 1, 2, 4, 5]] / len(firsts)
    # 5 drawable classes, 2 per batch: each in 2/5 of the batches; 6000 draws.
    np.testing.assert_allclose(frequencies, 0.2, atol=0.02)


def test_argument_errors():
    with pytest.raises(ValueError, match="classes_per_batch=6"):
        pk_batches(LABELS, LABELS, 6, 2)
    with pytest.raises(ValueError, match="examples_per_class"):
        pk_batches(LABELS, LABELS, 2, 0)
    with pytest.raises(ValueError, match="labels"):
        pk_batches(LABELS, LABELS.astype(float), 2, 2)
