"""Faster R-CNN's region proposal network as a two-task detector (Ren et al., NeurIPS 2015)."""

import functools

import keras

from keras_mtl import tasks as presets
from keras_mtl.architectures.registry import build
from keras_mtl.backbones.conv import conv
from keras_mtl.zoo.registry import register


@register("rpn_detector")
def rpn_detector(input_shape=(48, 64, 3), scales=(8.0, 16.0), aspect_ratios=(0.5, 1.0, 2.0), filters=(16, 32, 64),
                 tap="block2", channels=64, learning_rate=3e-3, compiled=True):
    """Object proposals as two tasks on a shared trunk: anchor objectness and box
    regression, the region proposal network of Faster R-CNN (Ren, He, Girshick and
    Sun, "Faster R-CNN: Towards Real-Time Object Detection with Region Proposal
    Networks", NeurIPS 2015).

    As in the paper (section 3.1): a 3x3 conv shared by two sibling 1x1 convs,
    `len(scales) * len(aspect_ratios)` anchors per cell, binary cross-entropy on the
    sampled anchors and smooth L1 on the positives' offsets `(t_x, t_y, t_w, t_h)`;
    `keras_mtl.detection.rpn_targets` makes the labels and sample weights,
    `keras_mtl.detection.ProposalLayer` the proposals. Not as in the paper: the
    trunk is a small conv net (`keras_mtl.backbones.conv`, the head on `tap`,
    stride 4 for "block2") rather than VGG-16 at stride 16, no second (Fast R-CNN)
    stage, and the two losses are balanced by learned uncertainty weights rather
    than the paper's fixed lambda = 10. `applications/detection_scenes.py` trains
    the same head on a SegNet trunk, with the paper's fixed lambda and several
    weighting methods.

    Returns:
        A `MultiTaskModel`, compiled (Adam, uncertainty weighting) unless
        `compiled=False`.
    """
    tasks = presets.detection(len(scales) * len(aspect_ratios), tap=tap, channels=channels)
    model = build("hard_sharing", tasks, backbone=functools.partial(conv, filters=filters),
                  input_shape=input_shape, name="rpn_detector")
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), weighting="uncertainty")
    return model
