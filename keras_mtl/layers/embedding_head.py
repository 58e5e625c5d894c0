"""`EmbeddingHead`: a linear embedding, optionally L2-normalised, for metric-learning tasks."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int


@keras.saving.register_keras_serializable(package="keras_mtl")
class EmbeddingHead(keras.layers.Layer):
    """A linear map of features `(B, F)` to embeddings `(B, units)`, L2-normalised
    when `normalize=True`.

    The head of a verification task: DeepID2's (Sun et al., NIPS 2014) identity
    feature is a linear layer on the shared trunk, trained by a contrastive loss
    (`normalize=False`); FaceNet (Schroff et al., CVPR 2015) and triplet networks
    for re-identification and fine-grained vehicles put the embedding on the unit
    sphere (`normalize=True`), so that distances lie in [0, 2]. Pool spatial
    features first (e.g. `keras.layers.GlobalAveragePooling2D`).

    Args:
        units: the embedding size.
        normalize: divide each embedding by its L2 norm.
        use_bias: whether the linear map has a bias.
        epsilon: floor of the squared norm in the normalisation.
        kernel_initializer: as for `keras.layers.Dense`.

    Example:

    ```python
    keras_mtl.Task("verification", loss=keras_mtl.losses.TripletLoss("batch_hard"),
                   head=[keras.layers.GlobalAveragePooling2D(),
                         keras_mtl.layers.EmbeddingHead(64, normalize=True)],
                   metrics=[keras_mtl.metrics.PairDistanceAUC()])
    ```
    """

    def __init__(self, units, normalize=False, use_bias=True, epsilon=1e-12,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = check_int("units", units, minimum=1)
        if not isinstance(normalize, bool):
            raise TypeError(f"normalize must be True or False. Received: normalize={normalize!r}")
        self.normalize, self.use_bias = normalize, bool(use_bias)
        self.epsilon = check_float("epsilon", epsilon, above=0)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dense = keras.layers.Dense(units, use_bias=use_bias,
                                        kernel_initializer=self.kernel_initializer,
                                        dtype=self.dtype_policy, name="dense")

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"EmbeddingHead '{self.name}' takes features of shape (batch, features); "
                             f"pool spatial features first. Received: input_shape={tuple(input_shape)}")
        self.dense.build(input_shape)

    def call(self, features):
        embeddings = self.dense(features)
        if not self.normalize:
            return embeddings
        squared = ops.sum(ops.square(embeddings), axis=-1, keepdims=True)
        return embeddings * ops.rsqrt(ops.maximum(squared, self.epsilon))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "normalize": self.normalize,
                "use_bias": self.use_bias, "epsilon": self.epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
