"""A multi-layer perceptron backbone."""

import keras

from keras_mtl.backbones.registry import register


@register("mlp", taps=("dense1", "dense2"))
def mlp(input_shape, units=(256, 128), activation="relu", dropout=0.0, prefix=""):
    """Dense layers; the output of layer i is named `{prefix}dense{i}` (1-based).

    Args:
        input_shape: feature shape `(D,)`.
        units: width of each dense layer.
        activation: activation of each dense layer.
        dropout: dropout rate after each dense layer (0 for none).
        prefix: prefix for layer names (to keep several copies apart).
    """
    inputs = keras.Input(shape=tuple(input_shape), name=f"{prefix}features")
    x = inputs
    for i, u in enumerate(units, start=1):
        x = keras.layers.Dense(u, activation=activation, name=f"{prefix}dense{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{prefix}dropout{i}")(x)
    return keras.Model(inputs, x, name=f"{prefix}mlp_backbone")
