"""Batch normalization over the global batch."""

import keras


@keras.saving.register_keras_serializable(package="keras_mtl")
class GlobalBatchNormalization(keras.layers.BatchNormalization):
    """A `keras.layers.BatchNormalization` that, under a TensorFlow distribution
    strategy, normalises with the statistics of the global batch (summed over
    replicas), so that N replicas train as one device on the same batch. On other
    backends, which run no replicas inside a step, it is the plain layer; its config
    leaves `synchronized` out, so saved models load on any backend.

    Args:
        **kwargs: as for `keras.layers.BatchNormalization`, without `synchronized`.
    """

    def __init__(self, **kwargs):
        kwargs.pop("synchronized", None)
        super().__init__(synchronized=keras.backend.backend() == "tensorflow", **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("synchronized")
        return config
