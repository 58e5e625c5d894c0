"""Backbone copies evaluated layer by layer, side by side.

Split, cross-stitch, soft-sharing and expert architectures run several copies of one
backbone ("columns") in lockstep, so that after any layer they can share, mix or
replace the columns' activations. Layers are matched across copies by their name
without the copy's prefix.
"""

import keras

from keras_mtl import _private
from keras_mtl.graph import is_functional, tap_features

_NORMALIZATION = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.UnitNormalization,
)


class Column:
    """One copy of a backbone, evaluated step by step on the caller's tensors.

    Args:
        backbone: a functional model, a Sequential, or any layer (one step).
        prefix: the prefix of the copy's layer names.
        inputs: the tensor(s) the copy reads.
    """

    def __init__(self, backbone, prefix, inputs):
        self.backbone = backbone
        self.prefix = prefix
        self.features = {}
        self._nodes = {}
        self.keys = []
        if is_functional(backbone):
            self._computed = {
                id(t): x for t, x in zip(keras.tree.flatten(backbone.inputs), keras.tree.flatten(inputs))
            }
            for node in _private.graph_nodes(backbone):
                self._add(node.operation, node)
        elif isinstance(backbone, keras.Sequential):
            self._last = inputs
            for layer in backbone.layers:
                self._add(layer, None)
        else:
            self._last = inputs
            self._add(backbone, None)

    def _add(self, operation, node):
        name = self.unprefixed(operation.name)
        occurrence = sum(1 for k in self.keys if k[0] == name)
        key = (name, occurrence)
        self._nodes[key] = (operation, node)
        self.keys.append(key)

    def unprefixed(self, name):
        return name[len(self.prefix):] if self.prefix and name.startswith(self.prefix) else name

    @property
    def layer_names(self):
        return list(dict.fromkeys(k[0] for k in self.keys))

    def layer(self, key):
        return self._nodes[key][0]

    def compute(self, key):
        """Runs the step `key` on the copy's current tensors and records its output."""
        operation, node = self._nodes[key]
        out = operation(self._last) if node is None else _private.call_node(node, self._computed)
        self.set(key, out)
        return out

    def set(self, key, value):
        """Makes `value` the output of step `key` for every later step of the copy."""
        _, node = self._nodes[key]
        if node is None:
            self._last = value
        else:
            for ref, new in zip(node.outputs, keras.tree.flatten(value)):
                self._computed[id(ref)] = new
        self.features[key[0]] = value

    def run(self):
        """Computes every step; returns the copy's output."""
        for key in self.keys:
            self.compute(key)
        return self.output()

    def output(self):
        if is_functional(self.backbone):
            return keras.tree.map_structure(lambda t: self._computed[id(t)], self.backbone.output)
        return self._last

    def ancestors(self, key):
        """The keys of step `key` and of every step it depends on."""
        _, node = self._nodes[key]
        if node is None:
            return set(self.keys[: self.keys.index(key) + 1])
        by_node = {id(n): k for k, (_, n) in self._nodes.items()}
        found, stack = set(), [node]
        while stack:
            n = stack.pop()
            k = by_node.get(id(n))
            if k is None or k in found:
                continue
            found.add(k)
            stack.extend(n.parent_nodes)
        return found

    def stage_ends(self):
        """The ends of the backbone's blocks: every layer whose output the next layer
        (in topological order) reads, when that layer has weights and is not a
        normalization (which belongs with the layer before it), plus the last layer.
        Earlier tensors may still be read later (skips, unpooling indices): the
        layers that read them stay after the stage end.
        """
        ends = []
        for key, following in zip(self.keys, self.keys[1:]):
            layer = self.layer(following)
            if (layer.trainable_weights and not isinstance(layer, _NORMALIZATION)
                    and self._feeds(key, following)):
                ends.append(key[0])
        return ends + [self.keys[-1][0]]

    def _feeds(self, key, following):
        node, reader = self._nodes[key][1], self._nodes[following][1]
        if node is None:
            return True
        return any(parent.operation is node.operation for parent in reader.parent_nodes)

    def key_of(self, name, argument):
        """The key of layer `name` (which must be called once), or a clear error."""
        keys = [k for k in self.keys if k[0] == name]
        if not keys:
            raise ValueError(
                f"{argument}={name!r} is not a layer of the backbone. Layers: {self.layer_names}"
            )
        if len(keys) > 1:
            raise ValueError(
                f"{argument}={name!r} names a layer the backbone calls {len(keys)} times; "
                "name a layer called once."
            )
        return keys[0]


def columns(backbone_factory, prefixes, inputs):
    return [Column(backbone_factory(p), p, inputs) for p in prefixes]


def task_feature(column, task):
    """What task's head reads from `column`: its output, or the layer `task.tap` names."""
    if task.tap is None:
        return column.output()
    return tap_features(column.features, task.tap, column.backbone.name)


def reject_taps(tasks, architecture):
    for task in tasks:
        if task.tap is not None:
            raise ValueError(
                f"Task '{task.name}' sets tap={task.tap!r}, which architecture "
                f"'{architecture}' does not support. Remove tap or use 'hard_sharing'/'split'."
            )


def check_int(value, argument, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argument} must be an integer >= {minimum}. Received: {argument}={value!r}")
    return value


def level_keys(column, names, argument):
    """The keys of the layers `names` in the column's order, ending with its last
    layer (added when missing)."""
    keys = {column.key_of(n, argument) for n in names}
    keys.add(column.keys[-1])
    return [k for k in column.keys if k in keys]
