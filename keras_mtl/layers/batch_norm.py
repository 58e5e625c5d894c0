"""Batch normalization over the global batch."""

import keras


def batch_normalization(**kwargs):
    """A `keras.layers.BatchNormalization` that, under a TensorFlow distribution
    strategy, normalises with the statistics of the global batch (summed over
    replicas), so that N replicas train as one device on the same batch. Other
    backends have no replicas in a step and get the plain layer.

    Args:
        **kwargs: as for `keras.layers.BatchNormalization`.
    """
    kwargs.setdefault("synchronized", keras.backend.backend() == "tensorflow")
    return keras.layers.BatchNormalization(**kwargs)
