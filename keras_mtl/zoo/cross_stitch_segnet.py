"""Cross-stitch network of two single-task SegNets (Misra et al., CVPR 2016)."""

import functools

import keras

from keras_mtl import tasks as presets
from keras_mtl.architectures.registry import build
from keras_mtl.backbones.segnet import segnet
from keras_mtl.zoo.registry import register


@register("cross_stitch_segnet")
def cross_stitch_segnet(input_shape=(48, 64, 3), classes=7, filters=(8, 16, 32), alpha_s=0.9,
                        unit_learning_rate_multiplier=10.0, learning_rate=2e-3, compiled=True):
    """Two single-task networks, semantic segmentation and surface normals, joined by
    cross-stitch units (Misra, Shrivastava, Gupta and Hebert, "Cross-stitch Networks
    for Multi-task Learning", CVPR 2016).

    As in the paper: one column per task, a unit after every stage of the column
    (after each pooling / unpooling block here, after pool1, pool2, pool5, fc6, fc7
    there), units initialised to `alpha_s` = 0.9 on a column's own activation and
    0.1 on the other's, the units' learning rate scaled up; the NYUv2 pair of tasks
    (segmentation and normals). Not as in the paper: the columns are small SegNets
    (`keras_mtl.backbones.segnet` with `filters`) rather than ImageNet-trained
    AlexNets, trained from scratch with Adam (the paper fine-tuned single-task
    networks with SGD; `keras_mtl.architectures.cross_stitch.from_single_task_models`
    starts from trained single-task models), and the units' multiplier is 10 (the
    paper's 10^2-10^3 were for SGD). Labels: see `keras_mtl.tasks.segmentation` and
    `keras_mtl.tasks.normals`. Trained (with depth as a third task) by
    `applications/architectures_scenes.py`, its cross-stitch row.

    Returns:
        A `MultiTaskModel`, compiled (Adam, equal weights, the units' learning-rate
        multiplier) unless `compiled=False`.
    """
    tasks = [presets.segmentation("segmentation", classes, width=filters[0]), presets.normals(width=filters[0])]
    model = build("cross_stitch", tasks, backbone=functools.partial(segnet, filters=filters),
                  input_shape=input_shape, name="cross_stitch_segnet", alpha_s=alpha_s)
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), weighting="equal",
                      learning_rate_multipliers={"cross_stitch": unit_learning_rate_multiplier})
    return model
