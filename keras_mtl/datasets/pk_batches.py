"""P x K batches: P classes and K examples of each per batch, for metric learning."""

import numpy as np

from keras_mtl._tensorflow import LazyTensorFlow
from keras_mtl.weighting._checks import check_int

tf = LazyTensorFlow("P x K batches (keras_mtl.datasets.pk_batches)")


def pk_batches(data, labels, classes_per_batch, examples_per_class, num_batches=None, seed=0):
    """A `tf.data` pipeline of P x K batches (Hermans et al., "In Defense of the
    Triplet Loss for Person Re-Identification", 2017): each batch has
    `classes_per_batch` (P) classes drawn without replacement and
    `examples_per_class` (K) examples of each, so that every example has positives
    and negatives for pair and triplet losses.

    The K examples of a class are distinct when it has at least K; a class with
    fewer repeats its examples in turn. Only classes with at least 2 examples
    (with K >= 2) are drawn. A batch lays its classes out one after another (the
    first K examples are of one class, and so on), so that splitting it into R
    equal replica shares keeps P/R whole classes in each when R divides P (see
    `keras_mtl.losses.TripletLoss` on `tf.distribute`).

    Deterministic: the batches are a function of `seed` and of how many times the
    dataset has been iterated (each epoch draws new batches, the same ones in every
    run with the same seed).

    Args:
        data: a nest (tuple, dict) of arrays or tensors whose first axis follows
            `labels`; a batch gathers its examples from each. For data too large to
            hold, pass `np.arange(n)` and map the indices to examples.
        labels: integer class labels `(n,)`.
        classes_per_batch: P >= 1.
        examples_per_class: K >= 1.
        num_batches: batches per iteration (epoch); None for an endless dataset
            (use `fit(steps_per_epoch=...)`).
        seed: the seed of the draws.

    Returns:
        A `tf.data.Dataset` whose elements are `data`'s nest with `P * K` examples,
        the classes in the order drawn.

    Example:

    ```python
    train = pk_batches((images, {"breed": breeds, "verification": breeds}), breeds,
                       classes_per_batch=8, examples_per_class=4, num_batches=50, seed=1)
    ```
    """
    P = check_int("classes_per_batch", classes_per_batch, minimum=1)
    K = check_int("examples_per_class", examples_per_class, minimum=1)
    if num_batches is not None:
        num_batches = check_int("num_batches", num_batches, minimum=1)
    seed = check_int("seed", seed)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape (n,). Received: labels with shape "
                         f"{labels.shape} and dtype {labels.dtype}")
    for leaf in tf.nest.flatten(data):
        rows = leaf.shape[0] if len(leaf.shape) else None
        if rows != len(labels):
            raise ValueError(f"data must have one row per label ({len(labels)} labels). "
                             f"Received: data with an array of shape {tuple(leaf.shape)}")
    classes = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    classes = [members for members in classes if len(members) >= min(K, 2)]
    if len(classes) < P:
        raise ValueError(f"classes_per_batch={P} exceeds the {len(classes)} classes with at least "
                         f"{min(K, 2)} examples.")
    counts = tf.constant([len(m) for m in classes], tf.int32)
    longest = max(len(m) for m in classes)
    table = tf.constant(np.stack([np.pad(m, (0, longest - len(m))) for m in classes]), tf.int64)

    def indices(seeds):
        chosen = tf.argsort(tf.random.stateless_uniform([len(classes)], seeds[:2]))[:P]
        size = tf.gather(counts, chosen)
        keys = tf.random.stateless_uniform([P, longest], seeds[2:])
        # Padding sorts last, so each row starts with a permutation of the class.
        keys = tf.where(tf.range(longest)[None, :] < size[:, None], keys, 2.0)
        order = tf.argsort(keys, axis=1)
        slots = tf.gather(order, tf.range(K)[None, :] % size[:, None], batch_dims=1)
        return tf.reshape(tf.gather(tf.gather(table, chosen), slots, batch_dims=1), [-1])

    data = tf.nest.map_structure(tf.convert_to_tensor, data)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(4)
    if num_batches is not None:
        seeds = seeds.take(num_batches)
    return seeds.map(indices).map(
        lambda batch: tf.nest.map_structure(lambda values: tf.gather(values, batch), data))
