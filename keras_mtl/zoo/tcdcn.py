"""TCDCN: facial landmarks with auxiliary face attributes (Zhang et al., ECCV 2014)."""

import keras

from keras_mtl import tasks as presets
from keras_mtl.architectures.registry import build
from keras_mtl.backbones.conv import conv
from keras_mtl.callbacks.taskwise_early_stopping import TaskwiseEarlyStopping
from keras_mtl.datasets.mtfl import ATTRIBUTES, NUM_CLASSES
from keras_mtl.zoo.registry import register


def tcdcn_trunk(input_shape, filters=(16, 32, 64), features=100):
    """TCDCN's shape: conv blocks (3x3 conv, ReLU, 2x2 max pooling), then one shared
    fully-connected feature layer (`features` ReLU units) that every task reads."""
    blocks = conv(input_shape, filters=filters, batch_norm=False)
    x = keras.layers.Flatten(name="flatten")(blocks.output)
    x = keras.layers.Dense(features, activation="relu", name="features")(x)
    return keras.Model(blocks.input, x, name="tcdcn_trunk")


def tcdcn_tasks(aux_weight=0.1, mean_shape=None):
    """Landmarks (`keras_mtl.tasks.landmarks`, the bias starting at `mean_shape`) and
    the four attributes (softmax), each weighted `aux_weight`."""
    return [presets.landmarks(mean_shape=mean_shape)] + [
        presets.classification(name, classes, from_logits=False, loss_weight=aux_weight)
        for name, classes in NUM_CLASSES.items()]


def tcdcn_early_stopping(threshold=100.0, k=5):
    """The paper's task-wise early stopping (section 3.2) of the four attributes:
    `keras_mtl.callbacks.TaskwiseEarlyStopping`, for `fit(..., validation_data=...)`."""
    return TaskwiseEarlyStopping(list(ATTRIBUTES), threshold, k=k)


@register("tcdcn")
def tcdcn(input_shape=(40, 40, 3), aux_weight=0.1, mean_shape=None, filters=(16, 32, 64), features=100,
          learning_rate=1e-3, compiled=True):
    """The Tasks-Constrained Deep Convolutional Network (Zhang, Luo, Loy and Tang,
    "Facial Landmark Detection by Deep Multi-task Learning", ECCV 2014): 5 facial
    landmarks regressed from a conv trunk and a shared feature layer, with gender,
    smile, glasses (2 classes each) and head pose (5) as auxiliary tasks.

    As in the paper: one shared feature layer read by every task, a least-squares
    landmark loss, softmax cross-entropy for the attributes weighted down against
    the landmarks (`aux_weight`, a fixed weight per auxiliary task), the normalised
    mean error and failure rate as metrics, task-wise early stopping of the
    attributes (`tcdcn_early_stopping`, the paper's section 3.2, passed to `fit`).
    Not as in the paper: three 3x3 conv blocks of `filters` before the `features`
    units (the paper's Fig. 2: four conv layers of 20, 48, 64 and 80 maps on 40 x 40
    grey faces), colour input, Adam instead of SGD. Labels: `landmarks` as
    `keras_mtl.tasks.landmarks` (x1..x5, y1..y5 in the face box), attributes as
    class indices. Trained by `applications/mtfl.py` (its `hard_sharing aux=...`
    rows, with `--taskwise-early-stopping`).

    Returns:
        A `MultiTaskModel`, compiled (Adam; fixed weights 1 and `aux_weight`, from the
        tasks' `loss_weight`) unless `compiled=False`.
    """
    model = build("hard_sharing", tcdcn_tasks(aux_weight, mean_shape), backbone=lambda shape: tcdcn_trunk(shape, filters, features),
                  input_shape=input_shape, name="tcdcn")
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model
