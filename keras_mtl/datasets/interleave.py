"""Many-to-many training: one dataset per task, one sampled task per batch."""

import numpy as np

from keras_mtl._tensorflow import LazyTensorFlow

tf = LazyTensorFlow("Interleaving per-task datasets (keras_mtl.datasets.interleave)")

SAMPLINGS = ("uniform", "proportional", "annealed")


def task_probabilities(sizes, sampling="proportional", alpha=1.0, epoch=0, epochs=1):
    """Probability of drawing each task for a batch (numpy, for inspection and tests).

    - "uniform": 1/K each.
    - "proportional": p_k proportional to size_k ** alpha.
    - "annealed" (Stickland & Murray 2019): proportional with
      alpha = 1 - 0.8 (e - 1) / (E - 1) in epoch e of E (counted from 1), moving
      from proportional (alpha 1) towards uniform (alpha 0.2). `epoch` here counts
      from 0. (TF Model Garden counts e from 0 and so starts at alpha 1.2.)
    """
    sizes = np.asarray(sizes, dtype="float64")
    if sampling == "uniform":
        return np.full(len(sizes), 1.0 / len(sizes))
    if sampling == "annealed":
        alpha = 1.0 - 0.8 * epoch / max(epochs - 1, 1)
    elif sampling != "proportional":
        raise ValueError(f"sampling must be one of {SAMPLINGS}. Received: sampling={sampling!r}")
    p = sizes ** alpha
    return p / p.sum()


def interleave(datasets, sampling="proportional", sizes=None, alpha=1.0,
               steps_per_epoch=None, epochs=1, seed=0):
    """Merges one batched dataset per task into one dataset of single-task batches.

    Each batch comes from one task, drawn per step by `sampling` (see
    `task_probabilities`). It is yielded as `(x, {task: y}, {task: mask})` with the
    drawn task's labels and a mask of ones, and zero labels with a mask of zeros for
    the other tasks, so a `MultiTaskModel` compiled with `freeze_absent_tasks=True`
    updates the trunk and the drawn task's head only. All datasets must batch inputs
    of the same shape (one model input); labels may differ per task.

    Args:
        datasets: dict from task name to a batched `tf.data.Dataset` of `(x, y)`;
            each is repeated as needed.
        sampling: "uniform", "proportional" or "annealed".
        sizes: examples per task (for proportional and annealed sampling); defaults
            to each dataset's cardinality in batches.
        alpha: exponent of proportional sampling (1: by size, 0: uniform).
        steps_per_epoch, epochs: the schedule; needed for annealed sampling, and
            the dataset then ends after `steps_per_epoch * epochs` batches
            (otherwise it is infinite: pass `steps_per_epoch` to `fit`).
        seed: the draws are a function of (seed, step).

    Example:

    ```python
    train = keras_mtl.datasets.interleave({"age": utk_batches, "landmarks": mtfl_batches},
                                          sampling="annealed", steps_per_epoch=200, epochs=10)
    model.compile(optimizer="adam", freeze_absent_tasks=True)
    model.fit(train, epochs=10, steps_per_epoch=200)
    ```
    """
    names = list(datasets)
    if not names:
        raise ValueError("interleave needs at least one dataset. Received: datasets={}")
    if sampling == "annealed" and not steps_per_epoch:
        raise ValueError("Annealed sampling needs steps_per_epoch (and epochs).")
    cardinalities = {n: int(datasets[n].cardinality()) for n in names}
    empty = [n for n, c in cardinalities.items() if c == 0]
    if empty:
        raise ValueError(f"The dataset of task(s) {empty} is empty (no batch).")
    if sizes is None:
        sizes = [cardinalities[n] for n in names]
        unknown = [n for n, c in cardinalities.items() if c < 0]
        if unknown and sampling != "uniform":
            raise ValueError(f"The dataset sizes of task(s) {unknown} are unknown or infinite: "
                             "pass sizes=[...] per task.")
    elif isinstance(sizes, dict):
        sizes = [sizes[n] for n in names]

    x_spec = datasets[names[0]].element_spec[0]
    label_specs = {}
    for n in names:
        spec = datasets[n].element_spec
        if not isinstance(spec, tuple) or len(spec) != 2:
            raise ValueError(f"Dataset of task '{n}' must yield (x, y) batches. Received: {spec}")
        if spec[0].shape[1:] != x_spec.shape[1:] or spec[0].dtype != x_spec.dtype:
            raise ValueError(
                f"All tasks' inputs must share shape and dtype: task '{n}' has {spec[0]}, "
                f"task '{names[0]}' has {x_spec}. Resize them to one shape."
            )
        label_specs[n] = spec[1]

    def one_task(name):
        def to_multitask(x, y):
            batch = tf.shape(x)[0]
            labels, masks = {}, {}
            for other in names:
                if other == name:
                    labels[other] = y
                    masks[other] = tf.ones([batch])
                else:
                    spec = label_specs[other]
                    labels[other] = tf.zeros(tf.concat([[batch], spec.shape[1:]], 0), spec.dtype)
                    masks[other] = tf.zeros([batch])
            return x, labels, masks

        return datasets[name].repeat().map(to_multitask)

    steps = steps_per_epoch * epochs if steps_per_epoch else None
    schedule = np.stack([
        np.log(task_probabilities(sizes, sampling, alpha, epoch, epochs))
        for epoch in range(epochs if sampling == "annealed" else 1)
    ]).astype("float32")

    def draw(step):
        epoch = tf.minimum(step // steps_per_epoch, epochs - 1) if sampling == "annealed" else 0
        logits = tf.gather(tf.constant(schedule), epoch)[None]
        return tf.cast(tf.random.stateless_categorical(
            logits, 1, seed=tf.stack([tf.constant(seed, tf.int64), step]))[0, 0], tf.int64)

    choices = tf.data.Dataset.range(steps if steps else np.iinfo(np.int64).max).map(draw)
    merged = tf.data.Dataset.choose_from_datasets(
        [one_task(n) for n in names], choices)
    return merged.prefetch(tf.data.AUTOTUNE)
