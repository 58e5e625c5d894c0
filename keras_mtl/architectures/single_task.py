"""Single-task baseline: one independent network per task."""

from keras_mtl.architectures.registry import register
from keras_mtl.graph import inline, tap_features


@register("single_task")
def single_task(tasks, inputs, backbone_factory):
    """One backbone copy per task (layer names prefixed `<task>_`), nothing shared:
    the baseline every multi-task result is compared against."""
    outputs = {}
    for task in tasks:
        prefix = f"{task.name}_"
        backbone = backbone_factory(prefix)
        trunk, features = inline(backbone, inputs)
        tap = task.tap if task.tap is None or isinstance(task.tap, int) else prefix + task.tap
        x = trunk if tap is None else tap_features(features, tap, backbone.name)
        outputs[task.name] = task.apply_head(x)
    return outputs
