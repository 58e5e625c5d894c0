"""`SoftSharingPenalty`: pulls the corresponding parameters of task columns together."""

import keras
from keras import ops

from keras_mtl._private import consumers, no_automatic_dependency_tracking

_NORMS = ("l2", "trace")


class _Reading(keras.metrics.Metric):
    """A metric without state that reports `read()` whenever results are logged."""

    def __init__(self, read, name):
        super().__init__(name=name)
        self._read = read

    def update_state(self, *args, **kwargs):
        pass

    def reset_state(self):
        pass

    def result(self):
        return self._read()


def _downstream_layers(layer):
    """Every layer reachable from `layer` along the graph's edges, by name."""
    found, seen, stack = {}, {id(layer)}, [layer]
    while stack:
        op = stack.pop()
        for nxt in consumers(op):
            if id(nxt) in seen:
                continue
            seen.add(id(nxt))
            stack.append(nxt)
            found.setdefault(nxt.name, []).append(nxt)
    return found


@keras.saving.register_keras_serializable(package="keras_mtl")
class SoftSharingPenalty(keras.layers.Layer):
    """Soft parameter sharing: a penalty on the distance between task columns.

    An identity on the model's inputs that ties groups of layers downstream of it:
    each group lists one layer per column, and the i-th trainable variables of a
    group's layers are pulled together. With `norm="l2"` the penalty is the sum over
    variables of `sum_{a<b} ||W_a - W_b||^2` (Duong et al., ACL 2015); with
    `norm="trace"` it is the sum of the nuclear norms of the matrices whose rows are
    the flattened `W_a` (Yang and Hospedales, "Trace Norm Regularised Deep
    Multi-Task Learning", ICLR 2017 workshop). `weight * penalty` is added with
    `add_loss` and logged as the metric `<layer name>` (by default
    `soft_sharing_penalty`).

    The tied layers are found by name in the graph the layer feeds, so the layer
    keeps no reference to them: the variable partition of the model still sees each
    column as task-specific, and `.keras` files round-trip.

    Args:
        groups: lists of layer names, one list per set of corresponding layers.
        weight: the penalty's factor in the loss.
        norm: "l2" or "trace".
    """

    def __init__(self, groups, weight=1e-3, norm="l2", **kwargs):
        kwargs.setdefault("name", "soft_sharing_penalty")
        super().__init__(**kwargs)
        groups = [list(g) for g in groups]
        if not groups or any(len(g) < 2 for g in groups):
            raise ValueError(f"groups must be lists of at least 2 layer names. Received: groups={groups!r}")
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}. Received: norm={norm!r}")
        if not float(weight) >= 0:
            raise ValueError(f"weight must be >= 0. Received: weight={weight!r}")
        self.groups = groups
        self.weight = float(weight)
        self.norm = norm
        self._tied = None
        self.reading = _Reading(self.penalty, name=self.name)

    @no_automatic_dependency_tracking
    def tied_variables(self):
        """Per tied variable, the list of its copies (one per column).

        Not tracked: the variables belong to the tied layers, not to this one.
        """
        if self._tied is None:
            layers = _downstream_layers(self)
            tied = []
            for group in self.groups:
                columns = []
                for name in group:
                    matches = layers.get(name, [])
                    if len(matches) != 1:
                        raise ValueError(
                            f"{self.name}: expected one layer named {name!r} downstream, "
                            f"found {len(matches)}. Call this layer on the model's inputs "
                            "and build the tied columns on its output."
                        )
                    columns.append(matches[0].trainable_variables)
                shapes = [[tuple(v.shape) for v in c] for c in columns]
                if any(s != shapes[0] for s in shapes):
                    raise ValueError(f"{self.name}: layers {group} have different variables: {shapes}")
                tied.extend(zip(*columns))
            self._tied = [list(t) for t in tied]
        return self._tied

    def penalty(self):
        """`weight` times the distance between the columns (a scalar)."""
        terms = []
        for copies in self.tied_variables():
            rows = ops.stack([ops.reshape(ops.cast(v, keras.config.floatx()), (-1,)) for v in copies])
            if self.norm == "l2":
                n = len(copies)
                terms.extend(ops.sum(ops.square(rows[a] - rows[b])) for a in range(n) for b in range(a + 1, n))
            else:
                terms.append(ops.sum(ops.svd(rows, full_matrices=False, compute_uv=False)))
        return self.weight * ops.sum(ops.stack(terms))

    def call(self, inputs):
        self.add_loss(self.penalty())
        return inputs

    def compute_output_spec(self, inputs):
        return keras.tree.map_structure(
            lambda t: keras.KerasTensor(t.shape, dtype=t.dtype), inputs)

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, weight=self.weight, norm=self.norm)
        return config
