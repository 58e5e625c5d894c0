"""Mixture of experts with DSelect-k gates (Hazimeh et al., NeurIPS 2021)."""

from keras_mtl.architectures.mmoe import shared_experts
from keras_mtl.architectures.registry import register
from keras_mtl.layers.dselect_k_gate import DSelectKGate


@register("dselect_k")
def dselect_k(tasks, inputs, backbone_factory, num_experts=4, num_nonzeros=2, gamma=1.0,
              entropy_regularization=0.01, per_example=True):
    """MMoE's shared experts with one DSelect-k gate per task (Hazimeh, Zhao,
    Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong and Chi, "DSelect-k:
    Differentiable Selection in the Mixture of Experts with Applications to
    Multi-Task Learning", NeurIPS 2021, section 4): task t's head reads a mixture of
    at most `num_nonzeros` experts.

    Each expert is a copy of the backbone (layers prefixed `expert<i>_`); gate
    `<task>_gate` (a `DSelectKGate`) reads the flattened model inputs and adds its
    entropy term to the training loss. `mmoe.gate_weights(model, x)` returns the
    gates' weights.

    Args:
        num_experts: how many experts (>= 2).
        num_nonzeros, gamma, entropy_regularization, per_example: each gate's, as
            for `keras_mtl.layers.DSelectKGate`.
    """
    return shared_experts(
        "dselect_k", tasks, inputs, backbone_factory, num_experts, 2,
        lambda name: DSelectKGate(num_nonzeros, gamma=gamma, entropy_regularization=entropy_regularization,
                                  per_example=per_example, name=name))
