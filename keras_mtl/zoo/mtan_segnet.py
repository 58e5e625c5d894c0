"""MTAN on SegNet with Dynamic Weight Average (Liu, Johns and Davison, CVPR 2019)."""

import keras

from keras_mtl import tasks as presets
from keras_mtl.architectures.registry import build
from keras_mtl.weighting.dwa import DWA
from keras_mtl.zoo.registry import register


@register("mtan_segnet")
def mtan_segnet(input_shape=(48, 64, 3), classes=7, filters=(8, 16, 32, 64, 64), temperature=2.0,
                learning_rate=1e-4, compiled=True):
    """The Multi-Task Attention Network on SegNet for segmentation, depth and surface
    normals, weighted by Dynamic Weight Average (Liu, Johns and Davison, "End-to-End
    Multi-Task Learning with Attention", CVPR 2019).

    As in the paper and its reference code: the SegNet encoder-decoder (five levels,
    two 3x3 conv-BN-ReLU blocks in the two outer levels and three deeper), one chain
    of attention modules per task, the heads (a 3x3 conv of the first level's width
    and a 1x1 conv), pixel cross-entropy with ignore label -1, masked L1 depth,
    `1 - cos` normals, DWA with temperature 2, Adam with learning rate 1e-4. Not as in
    the paper: the channels are `filters` (the paper's are 64, 128, 256, 512, 512,
    `keras_mtl.architectures.mtan.SEGNET_FILTERS`) and the input is small (NYUv2 at
    288 x 384 there). Labels: see `keras_mtl.tasks.segmentation`, `depth`, `normals`.
    Trained on Scenes by `applications/architectures_scenes.py` (its MTAN row, on the
    Scenes SegNet) and with DWA by `applications/weighting_scenes.py`.

    Returns:
        A `MultiTaskModel`, compiled (Adam, DWA) unless `compiled=False`.
    """
    width = filters[0]
    tasks = [presets.segmentation("segmentation", classes, width=width), presets.depth(width=width),
             presets.normals(width=width)]
    model = build("mtan", tasks, input_shape=input_shape, filters=filters, name="mtan_segnet")
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), weighting=DWA(temperature=temperature))
    return model
