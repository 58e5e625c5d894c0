"""A small convolutional backbone."""

import keras

from keras_mtl.backbones.registry import register
from keras_mtl.layers.batch_norm import GlobalBatchNormalization


@register("conv", taps=("block1", "block2", "block3"))
def conv(input_shape, filters=(32, 64, 128), batch_norm=True, pool=True, prefix=""):
    """A stack of conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool).

    The output of block i is the layer named `{prefix}block{i}` (1-based): a head can
    tap any of them with `Task(tap="block1")`.

    Args:
        input_shape: image shape `(H, W, C)`.
        filters: channels per block.
        batch_norm: add batch normalization after each conv.
        pool: halve the resolution after each block.
        prefix: prefix for layer names (to keep several copies apart).
    """
    inputs = keras.Input(shape=tuple(input_shape), name=f"{prefix}image")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = keras.layers.Conv2D(f, 3, padding="same", use_bias=not batch_norm,
                                name=f"{prefix}conv{i}")(x)
        if batch_norm:
            x = GlobalBatchNormalization(name=f"{prefix}bn{i}")(x)
        x = keras.layers.ReLU(name=f"{prefix}relu{i}" if pool else f"{prefix}block{i}")(x)
        if pool:
            x = keras.layers.MaxPooling2D(2, name=f"{prefix}block{i}")(x)
    return keras.Model(inputs, x, name=f"{prefix}conv_backbone")
