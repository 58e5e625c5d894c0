"""Hard parameter sharing: one shared trunk, one head per task."""

from keras_mtl.architectures.registry import register
from keras_mtl.graph import inline, tap_features


@register("hard_sharing")
def hard_sharing(tasks, inputs, backbone_factory):
    """A shared trunk with one head per task (Caruana 1997).

    A head reads the trunk's output, or an intermediate layer when its task sets
    `tap` (heads at different depths, like GoogLeNet's auxiliary classifiers).
    """
    backbone = backbone_factory("")
    trunk, features = inline(backbone, inputs)
    outputs = {}
    for task in tasks:
        x = trunk if task.tap is None else tap_features(features, task.tap, backbone.name)
        outputs[task.name] = task.apply_head(x)
    return outputs
