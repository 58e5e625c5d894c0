"""Multi-gate Mixture-of-Experts (Ma et al., KDD 2018)."""

import keras

from keras_mtl.architectures import _columns
from keras_mtl.architectures.registry import register
from keras_mtl.layers.dselect_k_gate import DSelectKGate
from keras_mtl.layers.expert_gate import ExpertGate


@register("mmoe")
def mmoe(tasks, inputs, backbone_factory, num_experts=4):
    """Shared experts and one softmax gate per task (Ma, Zhao, Yi, Chen, Hong and Chi,
    "Modeling Task Relationships in Multi-task Learning with Multi-gate
    Mixture-of-Experts", KDD 2018): task k's head reads `sum_e g_k(x)_e f_e(x)`.

    Each expert is a copy of the backbone (layers prefixed `expert<i>_`); gate
    `<task>_gate` reads the flattened model inputs. `gate_weights(model, x)` returns
    the gates' weights.

    Args:
        num_experts: how many experts.
    """
    return shared_experts("mmoe", tasks, inputs, backbone_factory, num_experts, 1,
                          lambda name: ExpertGate(name=name))


def shared_experts(architecture, tasks, inputs, backbone_factory, num_experts, minimum, gate):
    """`num_experts` backbone copies (layers prefixed `expert<i>_`) and per task the
    gate `gate(f"{task}_gate")` over them, reading the model inputs; task heads read
    the gates' mixtures."""
    _columns.reject_taps(tasks, architecture)
    _columns.check_int(num_experts, "num_experts", minimum)
    experts = [c.run() for c in _columns.columns(
        backbone_factory, [f"expert{i}_" for i in range(1, num_experts + 1)], inputs)]
    outputs = {}
    for task in tasks:
        mixture, _ = gate(f"{task.name}_gate")([inputs, *experts])
        outputs[task.name] = task.apply_head(mixture)
    return outputs


def gate_weights(model, x, batch_size=None):
    """The weights every `ExpertGate` or `DSelectKGate` of `model` gives its experts
    for inputs `x`: a dict by gate name of arrays of shape (examples, experts)."""
    gates = [layer for layer in model.layers if isinstance(layer, (ExpertGate, DSelectKGate))]
    if not gates:
        raise ValueError(f"Model {model.name!r} has no expert gates.")
    reader = keras.Model(model.inputs, {g.name: g.output[1] for g in gates})
    return reader.predict(x, batch_size=batch_size, verbose=0)
