"""CelebA's 40 attributes on a ResNet-18 trained with MGDA-UB (Sener and Koltun, NeurIPS 2018)."""

import keras

from keras_mtl import tasks as presets
from keras_mtl.architectures.registry import build
from keras_mtl.datasets.tfds_view import CELEB_A_ATTRIBUTES, celeb_a_tasks
from keras_mtl.weighting.mgda import MGDA
from keras_mtl.zoo.registry import register


def residual_block(x, filters, stride, name):
    """ResNet's basic block: two 3x3 convolutions with batch norm, and a 1x1
    projection on the shortcut when the shape changes."""
    shortcut = x
    y = keras.layers.Conv2D(filters, 3, stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"{name}_bn1")(y))
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))


def resnet_trunk(input_shape, widths=(64, 128, 256, 512), blocks=2):
    """ResNet-18 (`blocks=2` per stage) with a CIFAR-style stem, ending in the
    average-pooled features (pool 4, as in the authors' code) flattened."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="stem_bn")(x))
    for stage, filters in enumerate(widths):
        for block in range(blocks):
            x = residual_block(x, filters, 2 if stage and not block else 1, f"stage{stage}_{block}")
    pool = min(4, x.shape[1], x.shape[2])
    x = keras.layers.AveragePooling2D(pool, name="pool")(x)
    return keras.Model(inputs, keras.layers.Flatten(name="features")(x), name="resnet_trunk")


def attribute_tasks(attributes=CELEB_A_ATTRIBUTES):
    """One linear binary classifier (logits) per CelebA attribute, named as
    `keras_mtl.datasets.tfds_view.celeb_a_tasks` names them."""
    return presets.binary_attributes([t.name for t in celeb_a_tasks(attributes)])


@register("celeba_resnet18")
def celeba_resnet18(input_shape=(64, 64, 3), attributes=CELEB_A_ATTRIBUTES, widths=(64, 128, 256, 512), blocks=2,
                    learning_rate=5e-4, compiled=True):
    """CelebA multi-label classification: a shared ResNet-18 and one linear binary
    classifier per attribute, trained with MGDA-UB (Sener and Koltun, "Multi-Task
    Learning as Multi-Objective Optimization", NeurIPS 2018, section 6).

    As in the paper and its released configuration: ResNet-18 with a CIFAR-style
    stem on 64 x 64 images, the features average-pooled (pool 4) and flattened, 40
    linear heads with binary cross-entropy, MGDA-UB (MGDA on the gradients of the
    shared representation, normalised by "loss+"), Adam with learning rate 5e-4.
    Not as in the paper: nothing in the architecture at the defaults; a 2-CPU run
    needs smaller `widths` (e.g. `(8, 16, 32, 64)`) and fewer `attributes`, and the
    default training budget of the application is far shorter than the paper's.
    Labels: 0/1 per attribute task. Trained by `applications/celeba.py` (its `mgda`
    row).

    Returns:
        A `MultiTaskModel`, compiled (Adam, MGDA-UB) unless `compiled=False`.
    """
    # The trunk is made before the heads, the order in which their initializers draw seeds.
    trunk = resnet_trunk(input_shape, tuple(widths), blocks)
    model = build("hard_sharing", attribute_tasks(attributes), backbone=trunk, name="celeba_resnet18")
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      weighting=MGDA(normalization="loss+", gradient_mode="representation"))
    return model
