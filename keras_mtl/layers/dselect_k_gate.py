"""`DSelectKGate`: a differentiable top-k gate over experts (DSelect-k)."""

import math

import keras
import numpy as np
from keras import ops

from keras_mtl.layers.expert_gate import mix

# Keeps log(r + EPSILON) and its gradient finite where a selector output r is exactly 0.
EPSILON = 1e-6


def smooth_step(t, gamma):
    """The cubic smooth-step of Hazimeh et al. (2021, eq. 2): 0 for t <= -gamma/2, 1 for
    t >= gamma/2, `-2 t^3 / gamma^3 + 3 t / (2 gamma) + 1/2` in between."""
    cubic = -2.0 / gamma ** 3 * t ** 3 + 3.0 / (2.0 * gamma) * t + 0.5
    return ops.where(t <= -gamma / 2, ops.zeros_like(t), ops.where(t >= gamma / 2, ops.ones_like(t), cubic))


def binary_codes(num_experts):
    """(num_experts, ceil(log2 num_experts)) booleans: row l is l in binary, most
    significant bit first."""
    bits = math.ceil(math.log2(num_experts))
    return np.array([[(l >> (bits - 1 - j)) & 1 for j in range(bits)] for l in range(num_experts)], bool)


@keras.saving.register_keras_serializable(package="keras_mtl")
class DSelectKGate(keras.layers.Layer):
    """Mixes E experts with at most k non-zero weights, learned by gradient descent.

    Hazimeh, Zhao, Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong and Chi,
    "DSelect-k: Differentiable Selection in the Mixture of Experts with Applications
    to Multi-Task Learning", NeurIPS 2021, section 3. Each of k single-expert selectors
    holds m = ceil(log2 E) logits z; expert l gets the selector probability
    `r(z)_l = prod_j S(z_j)^[bit j of l] (1 - S(z_j))^[1 - bit j of l]` with the
    smooth-step S; the weights are `q = sum_i softmax(alpha)_i r(z_i)` and the mixture
    `sum_l q_l expert_l`. `r` sums to 1 over the 2^m codes, so `q` sums to 1 when E is
    a power of 2; otherwise the codes E..2^m-1 reach no expert and the layer adds
    `mean over examples of sum_i 1 / sum_l r(z_i)_l` (the authors' code) so that each
    selector keeps its mass on reachable experts.

    Per example (default), `z` and `alpha` are affine functions of the flattened gate
    input; otherwise they are trainable constants (a task-only gate). In training the
    layer adds `entropy_regularization * mean over examples of sum_i H(r(z_i))`, with
    `H(r) = -sum_l r_l log(r_l + 1e-6)`, which drives each selector to a single expert.

    Called on `[gate_input, expert_1, ..., expert_E]`; returns `(mixture, weights)`
    like `ExpertGate`.

    Args:
        num_nonzeros: k, the number of selectors (at most k experts get weight).
        gamma: width of the smooth-step's cubic region (> 0).
        entropy_regularization: the entropy term's factor (>= 0).
        per_example: whether `z` and `alpha` depend on the gate input.
        z_initializer: initializer of the selector logits (kernel and bias per
            example); default uniform on [-gamma/100, gamma/100] as in the paper's code.
        alpha_initializer: initializer of the selector weight logits.

    Example:

    ```python
    mixture, weights = DSelectKGate(num_nonzeros=2)([inputs, *experts])
    ```
    """

    def __init__(self, num_nonzeros, gamma=1.0, entropy_regularization=0.0, per_example=True,
                 z_initializer=None, alpha_initializer="random_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_nonzeros, int) or isinstance(num_nonzeros, bool) or num_nonzeros < 1:
            raise ValueError(f"num_nonzeros must be an integer >= 1. Received: num_nonzeros={num_nonzeros!r}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0. Received: gamma={gamma!r}")
        if not entropy_regularization >= 0:
            raise ValueError("entropy_regularization must be >= 0. "
                             f"Received: entropy_regularization={entropy_regularization!r}")
        self.num_nonzeros = num_nonzeros
        self.gamma = float(gamma)
        self.entropy_regularization = float(entropy_regularization)
        self.per_example = bool(per_example)
        self.z_initializer = keras.initializers.get(
            z_initializer or keras.initializers.RandomUniform(-self.gamma / 100, self.gamma / 100))
        self.alpha_initializer = keras.initializers.get(alpha_initializer)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 3:
            raise ValueError(
                "DSelectKGate expects [gate_input, expert_1, ..., expert_E] with E >= 2. "
                f"Received input shape: {input_shape}")
        gate_shape, *expert_shapes = (tuple(s) for s in input_shape)
        if any(s[1:] != expert_shapes[0][1:] for s in expert_shapes):
            raise ValueError(f"Experts must share one shape. Received shapes: {expert_shapes}")
        if self.per_example and any(d is None for d in gate_shape[1:]):
            raise ValueError(f"gate_input needs a fully known shape. Received: {gate_shape}")
        self.num_experts = len(expert_shapes)
        self._codes = binary_codes(self.num_experts)
        self._bits = self._codes.shape[1]
        k, m = self.num_nonzeros, self._bits
        if self.per_example:
            self._gate_features = math.prod(gate_shape[1:])
            f = self._gate_features
            self.z_kernel = self.add_weight(name="z_kernel", shape=(f, k * m), initializer=self.z_initializer)
            self.z_bias = self.add_weight(name="z_bias", shape=(k * m,), initializer=self.z_initializer)
            self.alpha_kernel = self.add_weight(name="alpha_kernel", shape=(f, k),
                                                initializer=self.alpha_initializer)
            self.alpha_bias = self.add_weight(name="alpha_bias", shape=(k,), initializer=self.alpha_initializer)
        else:
            self.z = self.add_weight(name="z", shape=(k, m), initializer=self.z_initializer)
            self.alpha = self.add_weight(name="alpha", shape=(k,), initializer=self.alpha_initializer)

    def selectors(self, gate_input):
        """`(r, alpha)`: the selector probabilities, shape (batch, k, E), and the
        selector weights softmax(alpha), shape (batch, k)."""
        batch = ops.shape(gate_input)[0]
        if self.per_example:
            flat = ops.cast(ops.reshape(gate_input, (-1, self._gate_features)), self.z_kernel.dtype)
            z = ops.reshape(ops.matmul(flat, self.z_kernel) + self.z_bias, (-1, self.num_nonzeros, self._bits))
            alpha = ops.matmul(flat, self.alpha_kernel) + self.alpha_bias
        else:
            z = ops.broadcast_to(self.z[None], (batch, self.num_nonzeros, self._bits))
            alpha = ops.broadcast_to(self.alpha[None], (batch, self.num_nonzeros))
        s = smooth_step(z, self.gamma)[:, :, None, :]  # (batch, k, 1, m)
        codes = ops.convert_to_tensor(self._codes)[None, None]  # (1, 1, E, m)
        r = ops.prod(ops.where(codes, s, 1.0 - s), axis=-1)
        if self.num_nonzeros == 1:
            return r, ops.ones_like(alpha)
        return r, ops.softmax(alpha, axis=-1)

    def call(self, inputs, training=False):
        gate_input, *experts = inputs
        r, alpha = self.selectors(gate_input)
        weights = ops.sum(alpha[:, :, None] * r, axis=1)
        if training:
            self.add_loss(self.regularization(r))
        return mix(weights, experts), weights

    def regularization(self, r):
        """The training penalty for selector probabilities `r` (batch, k, E): the
        entropy term plus, when E is not a power of 2, the reachability term."""
        penalty = ops.zeros((), r.dtype)
        if self.entropy_regularization:
            entropy = -ops.sum(r * ops.log(r + EPSILON), axis=(1, 2))
            penalty = penalty + self.entropy_regularization * ops.mean(entropy)
        if self.num_experts != 2 ** self._bits:
            penalty = penalty + ops.mean(ops.sum(1.0 / ops.sum(r, axis=-1), axis=-1))
        return penalty

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1]), (input_shape[0][0], len(input_shape) - 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_nonzeros=self.num_nonzeros, gamma=self.gamma,
            entropy_regularization=self.entropy_regularization, per_example=self.per_example,
            z_initializer=keras.initializers.serialize(self.z_initializer),
            alpha_initializer=keras.initializers.serialize(self.alpha_initializer))
        return config
