"""The interface every task-weighting method implements."""

import keras
from keras import ops

from keras_mtl._distribute import replica_sum

__all__ = ["GradientWeighting", "Weighting", "apply_weights", "gramian", "present_mask", "replica_sum",
           "row_norms", "safe_norm", "unit_gramian"]


class Weighting(keras.layers.Layer):
    """Base class of task-weighting methods.

    A weighting method turns the K per-task losses of a step into one objective.
    Its state (loss history, learned weights, KPIs) lives in Keras variables created
    in `build((K,))`, so it is saved in `.keras` files and restored by
    `BackupAndRestore`. Its trainable variables are optimized by the model's
    `weighting_optimizer`, on the gradient of the objective unless
    `weighting_gradients` says otherwise.

    What the train step calls, in order (all inside the compiled step):
    1. `observe(y, y_pred, sample_weight)`: sees the batch's labels and predictions
       (e.g. DTP's per-task KPIs). Default: nothing.
    2. `combine(losses, training, present)` -> `(objective, weights)`: the objective
       to differentiate and the K weights to log. Default: `sum_k w_k L_k` with
       `w = task_weights(losses, training)`.
    3. If `gradient_mode` is "shared_parameters" or "representation":
       `combine_gradients(grads, losses, present)` (or, for a `GradientWeighting`
       that implements it, `gramian_weights(gram, losses, present)` on their
       Gramian) with the K x P matrix of per-task gradients
       of the shared variables, or of the shared representation (the tensors where
       the trunk hands over to the heads, batch included); in the second mode the
       combined gradient goes back through the trunk in one backward pass.
    4. If `needs_last_shared_gradients`: `weighting_gradients(losses, grads)` with
       the K per-task gradients (flattened) of the last shared kernel; returns the
       gradients of the method's own trainable variables (GradNorm).
    5. After the optimizers' update, if `needs_post_step_losses`:
       `post_step(new_losses, present)` with the losses of the same batch recomputed
       with the updated parameters (FAMO).
    After each training epoch the model calls `on_epoch_end()` (DWA).

    `present` (K booleans, or None for all) says which tasks have labels in the global
    batch; an absent task's loss is 0. Every method leaves absent tasks out: they
    take no part in normalisations across tasks (softmaxes, means) and their state
    is left as it was.

    `losses` are each task's mean loss over the global batch (floatx, shape (K,)),
    the same on every replica under a distribution strategy, and so are the gradient
    matrices; a method that computes statistics of the batch itself (in `observe`)
    sums them over replicas with `keras_mtl.weighting.base.replica_sum`, as DTP does.
    """

    gradient_mode = None
    uses_gramian = False
    needs_last_shared_gradients = False
    needs_post_step_losses = False

    def __init__(self, name="weighting", **kwargs):
        super().__init__(name=name, **kwargs)

    def build(self, input_shape):
        self.num_tasks = int(input_shape[0])
        super().build(input_shape)

    def observe(self, y, y_pred, sample_weight):
        """Sees the labels and predictions (dicts by task name) of a training batch."""
        return None  # (a body AutoGraph can convert)

    def task_weights(self, losses, training=False):
        """Returns the K task weights for this step (a floatx tensor of shape (K,))."""
        raise NotImplementedError

    def combine(self, losses, training=False, present=None):
        """Returns `(objective, weights)` for the per-task losses (shape (K,)).

        With `training=True` the method may update its per-step state. `present`:
        K booleans (None: all tasks present).
        """
        weights = self.task_weights(losses, training=training)
        return ops.sum(weights * losses), weights

    def combine_gradients(self, grads, losses, present=None):
        """For gradient methods: `grads` is the K x P matrix of per-task gradients of
        the shared parameters or representation, `present` K booleans (whether the
        global batch has labels for each task; None: all). Returns
        `(combined, weights)`, `combined` of shape (P,), on the scale of the summed
        task gradients."""
        raise NotImplementedError

    def weighting_gradients(self, losses, last_shared_gradients, present=None):
        """Gradients of this method's trainable variables, or None for the objective's."""
        return None

    def post_step(self, new_losses, present=None):
        """Update from the batch's losses after the parameter update."""

    def on_epoch_end(self):
        """Epoch-level state update; the model calls it after each training epoch."""

    def call(self, losses, training=False):
        return self.combine(losses, training=training)[0]

    # Keras saves a layer's weights but not the state of its `SeedGenerator`s; a
    # method's `variables` are its weights followed by those states (and those of its
    # sublayers, which a method that holds one leaves out: Keras saves a sublayer on its
    # own), so saving them all makes its random draws continue the same on resume.
    def _saved_variables(self):
        return self.variables

    def save_own_variables(self, store):
        for i, variable in enumerate(self._saved_variables()):
            store[str(i)] = variable

    def load_own_variables(self, store):
        saved = self._saved_variables()
        if len(store.keys()) != len(saved):
            raise ValueError(
                f"Weighting {self.name!r} expected {len(saved)} saved variables "
                f"({[v.name for v in saved]}), received {len(store.keys())}.")
        for i, variable in enumerate(saved):
            variable.assign(store[str(i)])


class GradientWeighting(Weighting):
    """Base class of methods that combine per-task gradients (`combine_gradients`).

    Most methods need the K x P gradient matrix `G` only through its K x K Gramian
    `G G^T`: they implement `gramian_weights(gram, losses, present)` and the base
    computes the Gramian once and applies the weights, `combined = w^T G`. Under a
    distribution strategy in representation mode the model then all-reduces the
    K x K Gramian (the Gramian of the replicas' concatenated rows is the sum of
    their Gramians) and applies the weights to each replica's own rows, instead of
    gathering the whole matrix. A method that needs `G` itself (GradDrop) overrides
    `combine_gradients`.

    Iterative solvers return their final residual (a scale-free measure of how far
    the weights are from the method's optimality conditions; 0 for closed forms);
    the model logs its epoch mean as `weighting_residual` and warns once when it
    exceeds `residual_bound`.

    Absent tasks (`present[k]` False: no label for task k in the global batch, so a
    zero gradient row) are left out of the combination: their weight is 0 and the
    others' are those of the method on the present tasks alone.

    Args:
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of the
            shared representation, then one backward pass through the trunk).
    """

    GRADIENT_MODES = ("shared_parameters", "representation")
    residual_bound = 1e-3
    # The number P of shared parameters (the columns of the K x P matrix in
    # "shared_parameters" mode), which `compile` sets before `build`: a method that
    # keeps per-task gradients between steps (DB-MTL, MoCo, ExcessMTL) makes its K x P
    # state from it (`add_task_parameter_weight`).
    num_shared_parameters = None

    def __init__(self, gradient_mode="shared_parameters", **kwargs):
        super().__init__(**kwargs)
        if gradient_mode not in self.GRADIENT_MODES:
            raise ValueError(
                f"gradient_mode must be one of {self.GRADIENT_MODES}. "
                f"Received: gradient_mode={gradient_mode!r}"
            )
        self.gradient_mode = gradient_mode

    @property
    def uses_gramian(self):
        """Whether the method needs the gradients only through their Gramian."""
        return type(self).gramian_weights is not GradientWeighting.gramian_weights

    def task_weights(self, losses, training=False):
        return ops.ones_like(losses)

    def gramian_weights(self, gram, losses, present=None):
        """Returns `(weights, residual)` for the K x K Gramian `gram` (floatx) of the
        task gradients: the K weights of `combined = sum_k w_k g_k` (on the scale of
        the summed task gradients) and a scalar residual (0 for closed forms).
        `present`: K booleans, or None when every task is present."""
        raise NotImplementedError

    def combine_gradients(self, grads, losses, present=None):
        """For the K x P matrix `grads` of per-task gradients, returns
        `(combined, weights)`, `combined` of shape (P,)."""
        matrix = ops.cast(grads, keras.config.floatx())
        weights, _ = self.solve_gramian(gramian(matrix), losses, present)
        return ops.cast(apply_weights(weights, matrix), grads.dtype), weights

    def solve_gramian(self, gram, losses, present=None):
        """`gramian_weights` guarded against a non-finite Gramian (a NaN or Inf
        gradient): the solvers then see the identity, the weights are NaN, so
        that the step's non-finite check sees the failure instead of a linear
        solve raising inside the step, and the method's state (weights kept between
        steps, seed generators) stays as it was, which matters where the step still
        applies its state (a loss-scale overflow, which the `LossScaleOptimizer` of
        mixed precision skips itself)."""
        finite = ops.all(ops.isfinite(gram))
        safe = ops.where(finite, gram, ops.eye(ops.shape(gram)[0], dtype=gram.dtype))
        state = list(self.variables)
        before = [ops.copy(v.value) for v in state]  # a copy: a TensorFlow read may alias
        weights, residual = self.gramian_weights(safe, losses, present)
        for variable, old in zip(state, before):
            variable.assign(ops.where(finite, ops.convert_to_tensor(variable), old))
        return ops.where(finite, weights, float("nan")), residual

    def add_task_parameter_weight(self, name):
        """A K x P weight of zeros, saved and not trained, for a method that keeps
        per-task gradients between steps; P is `num_shared_parameters`, which
        `compile` sets before `build`."""
        if self.num_shared_parameters is None:
            raise ValueError(
                f"{type(self).__name__} needs the number of shared parameters for its K x P state, which "
                "`model.compile(weighting=...)` sets (or set num_shared_parameters before build). "
                f"Received: num_shared_parameters={self.num_shared_parameters!r}")
        return self.add_weight(shape=(self.num_tasks, int(self.num_shared_parameters)), initializer="zeros",
                               trainable=False, aggregation="mean", name=name)

    def get_config(self):
        config = super().get_config()
        config["gradient_mode"] = self.gradient_mode
        return config


def gramian(matrix):
    """`G G^T` of a K x P matrix."""
    return ops.matmul(matrix, ops.transpose(matrix))


def apply_weights(weights, matrix):
    """`sum_k w_k g_k` for the rows `g_k` of `matrix`."""
    return ops.matmul(ops.cast(weights, matrix.dtype)[None, :], matrix)[0]


def unit_gramian(gram):
    """`(norms, cosines)`: the gradients' norms and the Gramian of the unit gradients
    (0 in the rows and columns of zero gradients). Solving in this basis keeps the
    K x K systems as well conditioned as the angles between the gradients, however
    different their norms."""
    norms = ops.sqrt(ops.maximum(ops.diagonal(gram), 0.0))
    inverse = ops.divide_no_nan(ops.ones_like(norms), norms)
    return norms, gram * inverse[:, None] * inverse[None, :]


def safe_norm(vector):
    """The Euclidean norm of a vector, from the vector divided by its largest entry
    (so that the squares neither overflow nor underflow), with gradient 0 at the
    zero vector (where the norm has none)."""
    largest = ops.stop_gradient(ops.max(ops.abs(vector)))
    squares = ops.sum(ops.square(vector / ops.where(largest > 0, largest, 1.0)))
    positive = squares > 0
    return ops.where(positive, largest * ops.sqrt(ops.where(positive, squares, 1.0)), 0.0)


def row_norms(matrix):
    """The Euclidean norms of the rows of `matrix`, each from the row over its largest
    entry (so that the squares neither overflow nor underflow); 0 for a zero row."""
    largest = ops.max(ops.abs(matrix), axis=1)
    safe = ops.where(largest > 0, largest, 1.0)
    return largest * ops.sqrt(ops.sum(ops.square(matrix / safe[:, None]), axis=1))


def present_mask(present, num_tasks):
    """`present` as K booleans (all True for None)."""
    if present is None:
        return ops.ones((num_tasks,), "bool")
    return ops.cast(present, "bool")
