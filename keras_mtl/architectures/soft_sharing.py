"""Soft parameter sharing: one column per task, a penalty pulls the columns together."""

import keras

from keras_mtl.architectures import _columns
from keras_mtl.architectures.registry import register
from keras_mtl.graph import is_functional
from keras_mtl.layers.soft_sharing_penalty import SoftSharingPenalty


def _weighted_layers(backbone, prefix):
    """The backbone's layers with trainable weights, by name without the prefix
    (a backbone that is one layer counts as one, built or not)."""
    if not (is_functional(backbone) or isinstance(backbone, keras.Sequential)):
        return {backbone.name[len(prefix):]: backbone.name}
    return {
        (layer.name[len(prefix):] if layer.name.startswith(prefix) else layer.name): layer.name
        for layer in backbone.layers
        if layer.trainable_weights
    }


@register("soft_sharing")
def soft_sharing(tasks, inputs, backbone_factory, weight=1e-3, norm="l2", tied_layers=None):
    """Soft parameter sharing (Ruder 2017, section 3.2; Duong et al., ACL 2015; Yang
    and Hospedales, ICLR 2017 workshop): one backbone column per task (layers
    prefixed `<task>_`) and no shared weights, plus a `SoftSharingPenalty` on the
    distance between corresponding column parameters, added to the loss and logged
    as `soft_sharing_penalty`.

    Args:
        weight: the penalty's factor in the loss.
        norm: "l2" (sum over column pairs of squared distances) or "trace" (nuclear
            norm of the stacked columns' parameters).
        tied_layers: names of the backbone layers to tie (default: all with weights).
    """
    if len(tasks) < 2:
        raise ValueError(f"soft_sharing needs at least 2 tasks. Received: {len(tasks)} task(s)")
    prefixes = [f"{t.name}_" for t in tasks]
    backbones = [backbone_factory(p) for p in prefixes]
    weighted = [_weighted_layers(b, p) for b, p in zip(backbones, prefixes)]
    names = list(weighted[0]) if tied_layers is None else list(tied_layers)
    for name in names:
        if name not in weighted[0]:
            raise ValueError(
                f"tied_layers names {name!r}, which is not a backbone layer with weights. "
                f"Layers with weights: {list(weighted[0])}"
            )
    groups = [[w[name] for w in weighted] for name in names]
    tied = SoftSharingPenalty(groups, weight=weight, norm=norm)(inputs)
    outputs = {}
    for task, backbone, prefix in zip(tasks, backbones, prefixes):
        column = _columns.Column(backbone, prefix, tied)
        column.run()
        outputs[task.name] = task.apply_head(_columns.task_feature(column, task))
    return outputs
