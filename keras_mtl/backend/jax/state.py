"""The values of Keras variables during a stateless JAX step, and the pieces of that
step that work on them: running a function with variables read from values, the
optimizer's update gated by a condition, pullbacks of a `jax.vjp`, the loss scale."""

import jax
import jax.numpy as jnp
import keras
from keras import ops


class State:
    """The values of a list of Keras variables during a step, by variable identity."""

    def __init__(self, variables, values):
        self.values = {id(v): x for v, x in zip(variables, values)}

    def mapping(self, variables):
        return [(v, self.values[id(v)]) for v in variables]

    def get(self, variables):
        return [self.values[id(v)] for v in variables]

    def set(self, variables, values):
        for v, x in zip(variables, values):
            self.values[id(v)] = x

    def run(self, variables, fn, collect_losses=False):
        """`fn()` with `variables` read from (and assigned to) this state."""
        with keras.StatelessScope(state_mapping=self.mapping(variables),
                                  collect_losses=collect_losses) as scope:
            out = fn()
        self.set(variables, [scope.get_current_value(v) for v in variables])
        return out


def run_stateless(variables, values, fn, collect_losses=True):
    """`(fn(), new_values)`: `fn` run with `variables` read from `values`."""
    state = State(variables, values)
    out = state.run(variables, fn, collect_losses=collect_losses)
    return out, state.get(variables)


class GatedScope(keras.StatelessScope):
    """A `keras.StatelessScope` in which an assignment takes effect only where `gate`
    is true (elsewhere the variable keeps its value); `gated` maps the ids of the
    values it assigned to them (held, so that no other value takes an id)."""

    def __init__(self, gate, state_mapping):
        super().__init__(state_mapping=state_mapping)
        self.gate, self.gated = gate, {}

    def add_update(self, update):
        variable, value = update
        kept = jnp.where(self.gate, value, self.get_current_value(variable))
        # Later reads of the variable (Adam's update reads the moments it has just
        # assigned) read the gated value: without the barrier XLA recomputes the moments
        # from their old values there, and copies the whole state to keep both.
        kept = jax.lax.optimization_barrier(kept)
        self.gated[id(kept)] = kept
        super().add_update((variable, kept))


def gated_apply(gate, optimizer, optimizer_values, grads, variables, values):
    """`(new values, new optimizer values, gated)`: `optimizer.stateless_apply(
    optimizer_values, grads, values)` (`values`: those of the `variables` the
    optimizer was built on) with each of the optimizer's assignments made only where
    `gate` is true, which lets XLA update the state in place, and the values so
    gated by id (a value that changed in another way is not among them: whatever
    way a Keras release assigns variables in a stateless scope, a value is trusted
    only if it went through the gate). With `gate` None, or a `LossScaleOptimizer`
    (which assigns in its own `lax.cond`), nothing is gated."""
    if gate is None or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return (*optimizer.stateless_apply(optimizer_values, grads, values), {})
    variables = list(variables) + list(optimizer.variables)
    with GatedScope(gate, list(zip(variables, list(values) + list(optimizer_values)))) as scope:
        optimizer.apply(grads)
    new = [scope.get_current_value(v) for v in variables]
    return new[:len(values)], new[len(values):], scope.gated


def pullback_of(pullback, vector, entries):
    """The gradients (one per primal) of the sum of the `entries` of `vector`, from
    the `pullback` of its `jax.vjp`."""
    cotangent = jnp.zeros(vector.shape, vector.dtype).at[jnp.asarray(entries)].set(1)
    return pullback(cotangent)[0]


def pullback_rows(pullback, vector, entries):
    """`rows[v]`: the gradients of `primals[v]` of each of the `entries` of `vector`,
    stacked, from the `pullback` of its `jax.vjp`: a pullback per entry, as
    `jax.jacrev`'s vmapped pullback runs convolution gradients several times slower on
    XLA's CPU backend, and dense ones no faster (`benchmarks/README.md`, gradient
    methods on JAX)."""
    per_entry = [pullback_of(pullback, vector, [i]) for i in entries]
    return [jnp.stack(parts) for parts in zip(*per_entry)]


def scaled(value, scale):
    """`value` times the loss `scale` of mixed precision (in its dtype), or `value`
    without one: a *scaled* loss is one ready to differentiate."""
    return value if scale is None else value * ops.cast(scale, value.dtype)

