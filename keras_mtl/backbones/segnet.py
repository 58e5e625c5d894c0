"""A small SegNet encoder-decoder backbone for dense prediction."""

import keras

from keras_mtl.backbones.registry import register
from keras_mtl.layers.max_unpooling_2d import MaxUnpooling2D
from keras_mtl.layers.batch_norm import GlobalBatchNormalization


def _conv_block(x, filters, batch_norm, name, output_name):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm,
                            name=f"{name}_conv")(x)
    if batch_norm:
        # PyTorch's defaults, as in SegNet and MTAN: Keras's momentum of 0.99 lets the
        # moving statistics lag far behind in short trainings.
        x = GlobalBatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=output_name or f"{name}_relu")(x)


@register("segnet", taps=("encoder1", "encoder2", "encoder3", "decoder3", "decoder2", "decoder1"))
def segnet(input_shape, filters=(32, 64, 128), convs_per_block=2, batch_norm=True, prefix=""):
    """SegNet: an encoder of conv blocks with 2x2 max pooling, and a mirrored decoder
    that upsamples by max-unpooling at the encoder's pooling positions
    (Badrinarayanan et al., "SegNet", TPAMI 2017; the backbone of MTAN's NYUv2
    experiments, Liu et al., CVPR 2019). Features come out at the input resolution.

    Block outputs a head can tap: `{prefix}encoder{i}` (after the i-th pooling, 1/2^i
    of the input size) and `{prefix}decoder{i}` (at the resolution of the i-th
    encoder block's input); the model's output is `{prefix}decoder1`, full
    resolution with `filters[0]` channels.

    Args:
        input_shape: image shape `(H, W, C)`; H and W must be multiples of
            2 ** len(filters).
        filters: channels of the encoder blocks, shallow to deep.
        convs_per_block: 3x3 convolutions per block: one int, or one per level
            (MTAN's reference SegNet: `(2, 2, 3, 3, 3)`); a decoder block has as
            many as its encoder block.
        batch_norm: add batch normalization after each convolution.
        prefix: prefix for layer names (to keep several copies apart).

    Example:

    ```python
    model = keras_mtl.build("hard_sharing", tasks, backbone=functools.partial(
        segnet, filters=(16, 32, 64)), input_shape=(96, 128, 3))
    ```
    """
    filters = tuple(int(f) for f in filters)
    if not filters or min(filters) < 1:
        raise ValueError(f"filters must be a non-empty list of positive ints. Received: filters={filters!r}")
    convs = ((convs_per_block,) * len(filters) if isinstance(convs_per_block, int)
             else tuple(convs_per_block))
    if len(convs) != len(filters) or any(int(c) != c or c < 1 for c in convs):
        raise ValueError(
            "convs_per_block must be an integer >= 1 or one per level of filters "
            f"{filters}. Received: convs_per_block={convs_per_block!r}"
        )
    factor = 2 ** len(filters)
    height, width = input_shape[0], input_shape[1]
    if any(s is None or s % factor for s in (height, width)):
        raise ValueError(
            f"segnet with {len(filters)} blocks needs a height and width that are multiples "
            f"of {factor}. Received: input_shape={tuple(input_shape)!r}"
        )
    inputs = keras.Input(shape=tuple(input_shape), name=f"{prefix}image")
    x, before_pooling = inputs, []
    for i, f in enumerate(filters, start=1):
        for j in range(1, convs[i - 1] + 1):
            x = _conv_block(x, f, batch_norm, f"{prefix}enc{i}_{j}", None)
        before_pooling.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"{prefix}encoder{i}")(x)
    for i in range(len(filters), 0, -1):
        x = MaxUnpooling2D(name=f"{prefix}unpool{i}")([x, before_pooling[i - 1]])
        for j in range(1, convs[i - 1] + 1):
            last = j == convs[i - 1]
            channels = filters[max(i - 2, 0)] if last else filters[i - 1]
            x = _conv_block(x, channels, batch_norm, f"{prefix}dec{i}_{j}",
                            f"{prefix}decoder{i}" if last else None)
    return keras.Model(inputs, x, name=f"{prefix}segnet_backbone")
