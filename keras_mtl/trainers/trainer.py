"""`MultiTaskTrainer`: what every Keras backend's multi-task trainer shares.

The layering is Keras' own (`keras/src/trainers/trainer.py` under
`keras/src/backend/<name>/trainer.py`): inheritance runs agnostic -> backend ->
model, and the base class calls down only through the hooks at the end.

- `MultiTaskTrainer` (here): compile-time resolution (losses, metrics, the
  `MultiOptimizer` of the shared, task and weighting optimizers, the weighting
  method), data checks, label routing, the task loss vector, logging, `fit` and
  `evaluate`.
- `TensorFlowTrainer` / `JAXTrainer` / `TorchTrainer`
  (`keras_mtl/backend/<name>/trainer.py`): the step and the train function. Beside
  it, `policies.py` (the non-finite policy and per-task freezing, as wrappers around
  the optimizer's update) and, on TensorFlow and JAX, `gradients.py` (the per-task
  gradients of gradient methods and GradNorm; the torch trainer's are its own
  methods, eager `torch.autograd.grad` calls).
- `MultiTaskModel` (`keras_mtl/model.py`): what a model is: its tasks, the shared /
  task variable partition, its config.

One batch, from `fit` to each optimizer update, top to bottom:

1. `fit` (here) checks the data (`_checked_data`), puts the trainer's callbacks first
   and runs Keras' `fit`, whose train function calls the backend's `train_step`.
2. `train_step` (backend) routes the batch to the tasks (`_routed`, here), runs the
   forward pass and `_step_losses` (here): the task loss vector
   (`_task_loss_vector`), the tasks taking part (`_participating`) and the weighting
   method's combination, as a `StepLosses`.
3. The backend's `_gradients` differentiates the combined objective, or, for a
   gradient method, takes per-task gradients (`gradients.py`) and combines them
   (`keras_mtl/backend/common.py`).
4. The backend's update policy (`policies.py`) applies them with the model's
   `optimizer` (the `MultiOptimizer` that `compile` built), wrapped in the non-finite
   policy and per-task freezing.
5. The step logs through `_log_step` (here): the loss, task loss and task weight
   trackers and `compute_metrics`.

Hooks the base class calls and each backend trainer defines (nothing else is called
downwards): `_create_task_activity()`, `_prepare_trainer()` (end of `compile`) and
`_trainer_callbacks()` (callbacks `fit` runs before the caller's).
"""

import warnings
import weakref
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from keras_mtl import _callback_list, _data_checks, _distribute, _private
from keras_mtl import weighting as weighting_lib
from keras_mtl.graph import shared_representation
from keras_mtl.task import serialized
from keras_mtl.trainers.compile_utils import (OptimizerAssignment, clone_optimizer,
                                              loss_object, nested_layers)
from keras_mtl.trainers.data import (all_arrays, check_label, check_not_empty, empty_data_error,
                                     raise_data_error)
from keras_mtl.trainers.trackers import PerTaskMean, SkippedSteps
from keras_mtl.weighting._checks import check_float


class _EpochEndCallback(keras.callbacks.Callback):
    """Runs the weighting method's epoch-level update after each training epoch;
    raises for an epoch without a training step (training data of unknown length
    that turned out empty); under on_nonfinite="skip", warns for an epoch with
    skipped steps and raises for one with only skipped steps; warns once when the
    method's solver ended the epoch with a mean residual above the method's bound."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "loss" not in logs:
            raise empty_data_error("training")
        skipped = getattr(self.model, "_skipped_tracker", None)
        if skipped is not None:
            skipped.check(epoch)
        weighting = self.model.weighting
        weighting.on_epoch_end()
        residual = (logs or {}).get("weighting_residual")
        bound = getattr(weighting, "residual_bound", None)
        if (residual is not None and bound is not None and not residual <= bound
                and not getattr(weighting, "_warned_residual", False)):
            weighting._warned_residual = True
            warnings.warn(
                f"keras_mtl: {type(weighting).__name__}'s solver ended epoch {epoch} with a "
                f"mean residual of {residual:.3g}, above its bound {bound:g}: its task weights "
                "are not the exact optimum (see the method's docstring).", stacklevel=2)


class StepLosses(NamedTuple):
    """One forward pass's losses, by name; every backend's steps use these names.

    y_pred: the model's outputs, a dict by task name.
    task_losses: (K,) each task's mean loss over its labelled entries of the global
        batch (`_task_loss_vector`): what `<task>_loss` logs.
    counts: (K,) how many labelled entries each task has in the batch.
    present: (K,) bool: the tasks labelled in the batch and active.
    active_losses: `task_losses` with an inactive task's set to 0 (as an absent
        task's is): what the weighting method combines and gradients are taken of.
    weights: (K,) the task weights the weighting method used.
    total: the combined objective plus the regularization losses: what `loss` logs.
    """

    y_pred: Any
    task_losses: Any
    counts: Any
    present: Any
    active_losses: Any
    weights: Any
    total: Any


class MultiTaskTrainer:
    """The backend-agnostic half of a multi-task model's training (a mixin above
    `keras.Model`, under the backend trainer): compile-time resolution of the tasks'
    losses, metrics, optimizers and weighting method; label routing and checks; the
    task loss vector; per-task logging; `fit` and `evaluate`.

    It reads from the model only what a model is: `task_names`, `task_specs`,
    `shared_variables` and `task_variables`.
    """

    # -------------------------------------------------------- backend hooks

    def _create_task_activity(self):
        """Backend hook: makes the task activity variable (see `task_activity`)."""
        raise NotImplementedError

    def _prepare_trainer(self):
        """Backend hook: called at the end of `compile`."""

    def _trainer_callbacks(self):
        """Backend hook: callbacks that `fit` runs before the caller's."""
        return []

    # -------------------------------------------------------- task activity

    @_private.no_automatic_dependency_tracking
    def task_activity(self):
        """A (K,) float variable, made at the first call (not saved with the model):
        a task whose entry is 0 takes no part in training steps. The weighting
        method sees it as absent (weight 0 under every method) and its task
        variables keep their values, while its losses and metrics are still
        computed and logged. `keras_mtl.callbacks.TaskwiseEarlyStopping` sets it.
        """
        if getattr(self, "_task_activity", None) is None:
            self._create_task_activity()
        return self._task_activity

    @_private.no_automatic_dependency_tracking
    def _set_untracked(self, **attributes):
        """Sets trainer state that `.keras` files do not save (Keras' attribute
        tracking is off): the task activity, the non-finite record, caches."""
        for name, value in attributes.items():
            setattr(self, name, value)

    def _participating(self, task_losses, counts):
        """`(present, active_losses)`: the tasks labelled in the batch and active,
        and the task losses with an inactive task's set to 0, as an absent task's
        is."""
        activity = getattr(self, "_task_activity", None)
        if activity is None:
            return counts > 0, task_losses
        active = activity > 0
        return ops.logical_and(counts > 0, active), ops.where(active, task_losses, 0.0)

    # ------------------------------------------------------------------ compile

    @_private.no_automatic_dependency_tracking
    def compile(self, optimizer="adam", task_optimizer=None, weighting_optimizer=None,
                loss=None, loss_weights=None, weighting=None, metrics=None,
                learning_rate_multipliers=None, on_nonfinite="raise",
                freeze_absent_tasks=False, run_eagerly=False,
                steps_per_execution=1, jit_compile="auto", fast_dispatch=False):
        """Configures the model for training.

        Args:
            optimizer: optimizer of the shared variables.
            task_optimizer: optimizer of the task-specific variables: one optimizer,
                or a dict giving each task its own. Defaults to `optimizer` itself
                (the same updates as a copy for per-variable optimizers such as
                Adam or SGD, in fewer operations per step).
            weighting_optimizer: optimizer of the weighting method's trainable
                variables (e.g. learned uncertainties). Defaults to the task
                optimizer when all tasks share one, else to a copy of the first
                task's.
            loss: per-task losses: a dict by task name, a list in task order, or
                one loss for all tasks. Defaults to each task's `Task.loss`.
            loss_weights: fixed per-task weights (dict or list); shorthand for
                `weighting=keras_mtl.weighting.Fixed(loss_weights)`.
            weighting: a weighting method's name or instance (an instance belongs to
                one model: compiling it into a second one is an error). Defaults to fixed
                weights when any task has `loss_weight != 1`, else equal weights.
            metrics: per-task metrics (dict by task name, or a list for all tasks).
                Defaults to each task's `Task.metrics`. A task's sample weights
                (masks) apply to its metrics.
            learning_rate_multipliers: dict from an optimizer group to a factor:
                variables of layers with attribute `optimizer_group` equal to that
                group get their own copy of `optimizer` with the learning rate
                multiplied (e.g. `{"cross_stitch": 100.0}`); each group must be the
                `optimizer_group` of some layer of the model.
            on_nonfinite: what a training step with a NaN/Inf task loss or gradient does:
                "raise" (an error naming the task(s) and the step; under
                `jit_compile=True`, which cannot compile assertions, the step records
                the failure and the error comes after it, like `TerminateOnNaN`: on
                TensorFlow the train function reads the record after each call, on
                JAX within 64 calls and at the end of each epoch),
                "skip" (the step changes no variable, optimizer or weighting state;
                on TensorFlow it costs a copy of the training state per step), or
                "ignore" (no check, as in plain Keras: the step is applied, and
                `keras.callbacks.TerminateOnNaN` can stop training at a non-finite
                loss). The check of "raise" costs one reduction per gradient, which
                every variable's update waits for: 5-8% of a 1-2 ms `fit` step of a
                small MLP on either backend, nothing measurable on a SegNet
                (`benchmarks/README.md`).
            freeze_absent_tasks: when a batch has no label for a task (its sample
                weights sum to 0), leave that task's variables and optimizer state
                untouched, as if only the present tasks' heads and the trunk were
                trained on it (for `keras_mtl.datasets.interleave`). Each task then
                gets its own copy of the task optimizer.
            run_eagerly, steps_per_execution, jit_compile: as in `keras.Model.compile`.
                `steps_per_execution=N` runs N steps per call of the train function:
                the public way to cut the per-step dispatch of small models, whose
                steps take about a millisecond (batch-level callbacks then see
                every N-th step).
            fast_dispatch: on the TensorFlow backend, run each step on a `tf.data`
                iterator as one compiled call that also reads the batch, instead of
                Keras' own train and test functions, and skip Keras' per-batch
                callback work when no callback has a batch hook. Opt-in: it relies
                on private Keras / TensorFlow internals (checked on Keras 3.15.1,
                TensorFlow 2.21.0; where they are missing the model warns and runs
                Keras' own functions) and applies only with one step per execution,
                no distribution strategy and `run_eagerly=False`. Training is the
                same as with Keras' functions (`benchmarks/overhead.py` measures the
                speed).
        """
        names = self.task_names
        if on_nonfinite not in ("raise", "skip", "ignore"):
            raise ValueError("on_nonfinite must be 'raise', 'skip' or 'ignore'. "
                             f"Received: on_nonfinite={on_nonfinite!r}")
        self.on_nonfinite = on_nonfinite
        if fast_dispatch and keras.backend.backend() != "tensorflow":
            warnings.warn(
                f"keras_mtl: compile(fast_dispatch=True) applies to the TensorFlow backend; "
                f"model {self.name!r} runs Keras' own train function on the "
                f"{keras.backend.backend()} backend.", stacklevel=2)
        self.fast_dispatch = bool(fast_dispatch) and keras.backend.backend() == "tensorflow"
        task_losses = self._per_task(loss, "loss", single_is_shared=True)
        self._task_losses = {n: loss_object(n, v) for n, v in task_losses.items()}
        task_metrics = self._per_task(metrics, "metrics", single_is_shared=False)

        if weighting is None and loss_weights is not None:
            weighting = weighting_lib.Fixed(loss_weights)
        elif weighting is None and any(s["loss_weight"] != 1.0 for s in self.task_specs):
            weighting = weighting_lib.Fixed([s["loss_weight"] for s in self.task_specs])
        elif weighting is not None and loss_weights is not None:
            raise ValueError("Pass either loss_weights or weighting to compile, not both.")
        with _private.automatic_dependency_tracking():
            # A method made here by name must track its seed generator like one made
            # by the caller, or its state is neither saved nor restored.
            weighting = weighting_lib.get(weighting)
            owner = getattr(weighting, "_compiled_into", lambda: None)()
            if owner is not None and owner is not self and owner.weighting is weighting:
                raise ValueError(
                    f"weighting={weighting!r} is already compiled into model {owner.name!r}: "
                    "its state belongs to that model. Give each model its own instance.")
            if hasattr(weighting, "resolve"):
                weighting.resolve(names, losses=task_losses)
            if weighting.gradient_mode is not None and not self.shared_variables:
                raise ValueError(
                    f"{type(weighting).__name__} combines per-task gradients of shared "
                    f"variables, but model {self.name!r} shares no variable between tasks."
                )
            if weighting.gradient_mode is not None:
                weighting.num_shared_parameters = sum(int(np.prod(v.shape)) for v in self.shared_variables)
            if not weighting.built:
                weighting.build((len(names),))
        self.weighting = weighting
        weighting._compiled_into = weakref.ref(self)

        shared_optimizer = keras.optimizers.get(optimizer)
        if isinstance(task_optimizer, dict):
            missing = set(names) - set(task_optimizer)
            extra = set(task_optimizer) - set(names)
            if missing or extra:
                raise ValueError(
                    f"task_optimizer dict must have one entry per task {names}. "
                    f"Missing: {sorted(missing)}, unknown: {sorted(extra)}"
                )
            task_optimizers = {n: keras.optimizers.get(task_optimizer[n]) for n in names}
        else:
            one = (keras.optimizers.get(task_optimizer) if task_optimizer is not None
                   else shared_optimizer)
            task_optimizers = {n: one for n in names}
            if freeze_absent_tasks:
                task_optimizers = {n: clone_optimizer(one) for n in names}
        self.freeze_absent_tasks = bool(freeze_absent_tasks)
        first = task_optimizers[names[0]]
        if weighting_optimizer is not None:
            weighting_optimizer_arg = weighting_optimizer = keras.optimizers.get(weighting_optimizer)
        else:
            weighting_optimizer_arg = None
            shared_by_all = all(o is first for o in task_optimizers.values())
            weighting_optimizer = first if shared_by_all else clone_optimizer(first)
        self.shared_optimizer = shared_optimizer
        self.task_optimizers = task_optimizers
        self.weighting_optimizer = weighting_optimizer

        assignments = [(v, task_optimizers[n]) for n in names for v in self.task_variables[n]]
        assignments += [(v, weighting_optimizer) for v in weighting.trainable_variables]
        self.group_optimizers = self._group_optimizers(shared_optimizer, learning_rate_multipliers)
        for layer in nested_layers(self):
            group = getattr(layer, "optimizer_group", None)
            if group in self.group_optimizers:
                assignments += [(v, self.group_optimizers[group]) for v in layer.trainable_variables]
        multi = keras.optimizers.MultiOptimizer(OptimizerAssignment(shared_optimizer, assignments))

        super().compile(
            optimizer=multi,
            weighted_metrics={n: m for n, m in task_metrics.items() if m},
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
        )
        self._total_loss_tracker = keras.metrics.Mean(name="loss")
        self._task_loss_tracker = PerTaskMean(names, "_loss", name="task_losses")
        self._task_weight_tracker = PerTaskMean(names, "_weight", name="task_weights")
        self._residual_tracker = (keras.metrics.Mean(name="weighting_residual")
                                  if weighting.gradient_mode is not None else None)
        self._skipped_tracker = SkippedSteps() if on_nonfinite == "skip" else None
        self.optimizer.build(self._optimized_variables())
        self._task_compile_config = {
            "optimizer": shared_optimizer,
            "task_optimizer": (task_optimizer if isinstance(task_optimizer, dict)
                               else None if task_optimizer is None else task_optimizers[names[0]]),
            "weighting_optimizer": weighting_optimizer_arg,
            "loss": task_losses,
            "weighting": weighting,
            "metrics": task_metrics,
            "learning_rate_multipliers": learning_rate_multipliers,
            "on_nonfinite": on_nonfinite,
            "freeze_absent_tasks": freeze_absent_tasks,
            "run_eagerly": run_eagerly,
            "steps_per_execution": steps_per_execution,
            "jit_compile": jit_compile,
            "fast_dispatch": bool(fast_dispatch),
        }
        self._prepare_trainer()

    def _group_optimizers(self, shared_optimizer, multipliers):
        if multipliers is not None and not isinstance(multipliers, dict):
            raise TypeError("learning_rate_multipliers must be a dict from an optimizer group "
                            f"to a factor. Received: learning_rate_multipliers={multipliers!r}")
        layer_groups = {getattr(layer, "optimizer_group", None)
                        for layer in nested_layers(self)} - {None}
        unknown = set(multipliers or {}) - layer_groups
        if unknown:
            raise ValueError(
                f"learning_rate_multipliers names optimizer group(s) {sorted(unknown)} that no "
                f"layer of model {self.name!r} has. Groups of its layers: {sorted(layer_groups)}")
        groups = {}
        for group, factor in (multipliers or {}).items():
            factor = check_float(f"learning_rate_multipliers[{group!r}]", factor, above=0)
            config = shared_optimizer.get_config()
            if not isinstance(config["learning_rate"], (int, float)):
                raise ValueError(
                    "learning_rate_multipliers needs a constant learning rate on the shared "
                    f"optimizer. Received: learning_rate={config['learning_rate']!r}"
                )
            config["learning_rate"] = config["learning_rate"] * factor
            groups[group] = shared_optimizer.__class__.from_config(config)
        return groups

    def _per_task(self, value, field, single_is_shared):
        names = self.task_names
        if value is None:
            values = {s["name"]: s[field] for s in self.task_specs}
        elif isinstance(value, dict):
            unknown = set(value) - set(names)
            if unknown:
                raise ValueError(f"{field} names unknown tasks {sorted(unknown)}. Tasks: {names}")
            values = {n: value.get(n) for n in names}
        elif isinstance(value, (list, tuple)) and single_is_shared:
            if len(value) != len(names):
                raise ValueError(f"{field} has {len(value)} entries for {len(names)} tasks {names}.")
            values = dict(zip(names, value))
        else:
            values = {n: value for n in names}
        return values

    def _optimized_variables(self):
        """The network's trainable variables, then the weighting method's."""
        variables, seen = [], set()
        for v in list(self.trainable_variables) + list(self.weighting.trainable_variables):
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
        return variables

    def get_compile_config(self):
        if not self.compiled:
            return {}
        config = dict(self._task_compile_config)
        config["loss"] = {n: serialized(n, "loss", l) for n, l in config["loss"].items()}
        config["metrics"] = {
            n: [serialized(n, "metric", m) for m in ms] if isinstance(ms, (list, tuple))
            else serialized(n, "metric", ms)
            for n, ms in config["metrics"].items()}
        return keras.saving.serialize_keras_object(config)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    @property
    def metrics(self):
        metrics = super().metrics
        if not self.compiled:
            return metrics
        trackers = [self._total_loss_tracker, self._task_loss_tracker, self._task_weight_tracker]
        for tracker in ("_residual_tracker", "_skipped_tracker"):
            if getattr(self, tracker, None) is not None:
                trackers.append(getattr(self, tracker))
        # Keras' own "loss" metric (its train step's) is replaced by this model's.
        return trackers + [m for m in metrics if m.name != "loss"]

    # --------------------------------------------------------------------- data

    def labels_by_task(self, y):
        """Returns the labels as a dict by task name.

        `y` is a dict by task name, a list/tuple in task order, or one tensor that is
        split by the tasks' `label_slice` (or belongs to the only task).
        """
        names = self.task_names
        if isinstance(y, dict):
            unknown = [k for k in y if k not in names]
            if unknown:
                raise ValueError(f"Labels given for unknown task(s) {unknown}. Tasks: {names}")
            missing = [n for n in names if n not in y]
            if missing:
                raise ValueError(f"No labels for task(s) {missing}. Labels given for: {list(y)}")
            return dict(y)
        if isinstance(y, (list, tuple)):
            if len(y) != len(names):
                raise ValueError(f"Got {len(y)} label tensors for {len(names)} tasks {names}.")
            return dict(zip(names, y))
        if y is None:
            raise ValueError(f"No labels given. Tasks: {names}")
        if len(names) == 1:
            return {names[0]: y}
        unsliced = [s["name"] for s in self.task_specs if not s["label_slice"]]
        if unsliced:
            raise ValueError(
                f"Got one label tensor for several tasks, but task(s) {unsliced} declare no "
                "label_slice. Give labels as a dict by task name, or a label_slice per task."
            )
        width = y.shape[-1]
        labels = {}
        for s in self.task_specs:
            start, stop = s["label_slice"]
            if width is not None and stop > width:
                raise ValueError(
                    f"Task '{s['name']}' label_slice {(start, stop)} exceeds the label "
                    f"tensor's last axis of size {width}."
                )
            labels[s["name"]] = y[..., start:stop]
        return labels

    def _outputs_by_task(self):
        return dict(zip(self.output_names, keras.tree.flatten(self.outputs)))

    def _check_array_labels(self, y):
        """Checks numpy labels against the outputs before Keras converts them (which
        fails on strings with an error that does not name the task), and their values
        against the task's loss (`_data_checks.value_rule`)."""
        if not all_arrays(y):
            return
        outputs = self._outputs_by_task()
        losses = getattr(self, "_task_losses", {})
        for name, label in self.labels_by_task(y).items():
            check_label(name, label, outputs[name], losses.get(name))
            _data_checks.check_label_values(
                name, label, _data_checks.value_rule(losses.get(name), outputs[name]))

    def _check_arrays(self, x, y, sample_weight):
        """The checks of `_data_checks` on numpy inputs, labels and sample weights."""
        _data_checks.check_inputs(x, keras.tree.flatten(self.inputs))
        self._check_array_labels(y)
        if sample_weight is None or not all_arrays(sample_weight):
            return
        outputs = self._outputs_by_task()
        for name, weight in self._sample_weights_by_task(sample_weight).items():
            if weight is not None:
                _data_checks.check_weight_shape(name, weight, outputs[name])
                _data_checks.check_weight_values(name, weight)

    def _complete_sample_weights(self, y, sample_weight):
        """A sample-weight dict of numpy arrays that names some tasks, with weights of
        1 for the others (Keras wants one array per output)."""
        if not (isinstance(sample_weight, dict) and sample_weight and isinstance(y, dict)
                and all_arrays(sample_weight)):
            return sample_weight
        self._sample_weights_by_task(sample_weight)  # an unknown task name is an error
        size = len(keras.tree.flatten(sample_weight)[0])
        return {n: sample_weight[n] if n in sample_weight
                else np.ones(size, keras.config.floatx()) for n in self.task_names}

    def _checked_data(self, x, y, sample_weight):
        """`(x, sample_weight)` to pass to Keras' `fit` or `evaluate`: arrays checked
        (`_check_arrays`), a partial sample-weight dict completed, a `tf.data`
        pipeline or a generator wrapped to check each batch (`_data_checks`)."""
        outputs, losses = self._outputs_by_task(), getattr(self, "_task_losses", {})
        if _data_checks.is_dataset(x):
            rules = {n: _data_checks.value_rule(losses.get(n), outputs[n]) for n in outputs}
            return _data_checks.checked_dataset(
                x, rules, outputs, self.labels_by_task, self._sample_weights_by_task,
                keras.tree.flatten(self.inputs)), sample_weight
        if _data_checks.is_generator(x):
            return _data_checks.checked_generator(
                x, lambda batch: self._check_arrays(
                    *keras.utils.unpack_x_y_sample_weight(batch))), sample_weight
        sample_weight = self._complete_sample_weights(y, sample_weight)
        self._check_arrays(x, y, sample_weight)
        return x, sample_weight

    def _sample_weights_by_task(self, sample_weight):
        if sample_weight is None or not isinstance(sample_weight, dict):
            return {n: sample_weight for n in self.task_names}
        unknown = [k for k in sample_weight if k not in self.task_names]
        if unknown:
            raise ValueError(f"Sample weights given for unknown task(s) {unknown}.")
        return {n: sample_weight.get(n) for n in self.task_names}

    # --------------------------------------------------------------------- steps

    def _task_loss_vector(self, y, y_pred, sample_weight):
        """Returns `(losses, counts)`: each task's mean loss over the labelled entries
        of the global batch (`keras.config.floatx()`, shape (K,)) and how many labelled entries it has
        (the sum of the task's sample weights, else the batch size).

        Under a distribution strategy every replica gets the same loss values (one
        all-reduce of 2K numbers), while their gradient is the replica count times that
        of this replica's share of the global mean: so anything computed from the
        losses, divided by the replica count and summed over replicas (as gradients
        are), has the gradient it has on one replica with the whole batch.
        """
        values, sizes, counts = [], [], []
        for name in self.task_names:
            check_label(name, y[name], y_pred[name], self._task_losses[name])
            weight = sample_weight[name]
            if weight is not None:
                _data_checks.check_weight_shape(name, weight, y_pred[name])
            values.append(ops.cast(_distribute.unscale_loss(
                self._task_losses[name](y[name], y_pred[name], weight)), keras.config.floatx()))
            if weight is None:
                sizes.append(ops.cast(ops.shape(y[name])[0], keras.config.floatx()))
                counts.append(None)
            else:
                # A sample weight is a mask: average over the labelled entries only.
                weight = ops.cast(weight, keras.config.floatx())
                sizes.append(ops.cast(ops.size(weight), keras.config.floatx()))
                counts.append(ops.sum(weight))
        replicas = _distribute.num_replicas()
        if replicas == 1:
            losses = [v if c is None else ops.divide_no_nan(v * n, c)
                      for v, n, c in zip(values, sizes, counts)]
            return ops.stack(losses), ops.stack([n if c is None else c for n, c in zip(sizes, counts)])
        counts = _distribute.replica_sum(
            ops.stack([n if c is None else c for n, c in zip(sizes, counts)]))
        share = ops.divide_no_nan(ops.stack(values) * ops.stack(sizes), counts)
        local = replicas * share
        total = _distribute.replica_sum(ops.stop_gradient(share))
        return local + ops.stop_gradient(total - local), counts

    def _regularization_loss(self):
        if not self.losses:
            return ops.zeros((), keras.config.floatx())
        return ops.sum(ops.stack([ops.cast(l, keras.config.floatx()) for l in self.losses]))

    def _step_losses(self, y, y_pred, sample_weight, regularization, training):
        """The `StepLosses` of outputs `y_pred`: the task loss vector, the tasks that
        take part, and the weighting method's combination (which in a training step
        first observes the batch)."""
        task_losses, counts = self._task_loss_vector(y, y_pred, sample_weight)
        present, active_losses = self._participating(task_losses, counts)
        if training:
            self.weighting.observe(y, y_pred, sample_weight)
        objective, weights = self.weighting.combine(active_losses, training=training,
                                                    present=present)
        return StepLosses(y_pred, task_losses, counts, present, active_losses, weights,
                          objective + regularization)

    def _post_step(self, x, y, sample_weight, present):
        """For a weighting method that reads the task losses after the update
        (`needs_post_step_losses`): a forward pass in inference mode, so that it
        moves no batch statistics."""
        if self.weighting.needs_post_step_losses:
            y_pred = self(x, training=False)
            self.weighting.post_step(self._task_loss_vector(y, y_pred, sample_weight)[0],
                                     present)

    def _routed(self, data):
        """`(x, y, sample_weight)` of a batch, labels and sample weights by task."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return x, self.labels_by_task(y), self._sample_weights_by_task(sample_weight)

    def _log_step(self, x, y, sample_weight, step, residual=None, finite=None):
        """Updates the trackers (and the residual's, when given) and returns the
        metrics' logs of a step (`_update_trackers`)."""
        self._update_trackers(x, step, finite)
        if residual is not None:
            self._update_residual(residual, step.weights)
        return self.compute_metrics(x, y, step.y_pred, sample_weight)

    def _update_trackers(self, x, step, finite=None):
        """Epoch means: the total loss per example, each task's loss per labelled
        entry (`counts` of them in this batch), the weights per step. With `finite`
        (a boolean tensor), a step where it is false counts for nothing."""
        total, task_losses, weights, counts = step.total, step.task_losses, step.weights, step.counts
        batch = ops.cast(ops.shape(keras.tree.flatten(x)[0])[0], keras.config.floatx())
        # A task absent from the batch (or inactive) takes no part in it: weight 0.
        weights = ops.where(self._participating(weights, counts)[0], weights, 0.0)
        one = ops.ones_like(weights) * self._weighed(weights)
        weights = ops.where(ops.isfinite(weights), weights, 0.0)
        if finite is not None:
            # A skipped step counts for nothing in the logs.
            batch, one = batch * ops.cast(finite, keras.config.floatx()), one * ops.cast(finite, keras.config.floatx())
            counts = counts * ops.cast(finite, keras.config.floatx())
            total = ops.where(finite, total, 0.0)
            task_losses = ops.where(finite, task_losses, 0.0)
            self._skipped_tracker.update_state(finite)
        self._total_loss_tracker.update_state(total, sample_weight=batch)
        self._task_loss_tracker.update_state(task_losses, counts)
        self._task_weight_tracker.update_state(weights, one)

    @staticmethod
    def _weighed(weights):
        """1 (floatx) for a step whose task weights are all finite, else 0: a gradient
        method's weights for non-finite gradients (such as a loss-scale overflow, which
        the `LossScaleOptimizer` of mixed precision skips) count for nothing in the
        epoch means of the weights and the residual."""
        return ops.cast(ops.all(ops.isfinite(weights)), keras.config.floatx())

    def _update_residual(self, residual, weights):
        weighed = self._weighed(weights)
        self._residual_tracker.update_state(ops.where(weighed > 0, residual, 0.0),
                                            sample_weight=weighed)

    def _frozen_when_absent(self):
        """Per task, what a step leaves unchanged when the task takes no part in it:
        under `freeze_absent_tasks`, its variables and its own optimizer's state when
        it is absent or inactive; else, once `task_activity` exists, its variables
        when it is inactive; else None."""
        if self.freeze_absent_tasks:
            return [list(self.task_variables[n]) + list(self.task_optimizers[n].variables)
                    for n in self.task_names]
        if getattr(self, "_task_activity", None) is not None:
            return [list(self.task_variables[n]) for n in self.task_names]
        return None

    @property
    def last_shared_kernel(self):
        """The last shared variable of rank >= 2 (GradNorm's "last shared layer")."""
        kernels = [v for v in self.shared_variables if len(v.shape) >= 2]
        if not kernels:
            raise ValueError("The model has no shared kernel (no variable feeds several tasks).")
        return kernels[-1]

    def _graph_cache(self):
        """A dict of models derived from this one's graph (not saved)."""
        if getattr(self, "_derived_models", None) is None:
            self._set_untracked(_derived_models={})
        return self._derived_models

    def _representation_model(self):
        """A model sharing this model's layers that also returns the shared
        representation (cached outside the attributes that `.keras` files save)."""
        cache = self._graph_cache()
        if "representation" not in cache:
            outputs = dict(zip(self.output_names, keras.tree.flatten(self.outputs)))
            cache["representation"] = keras.Model(
                self.inputs, [outputs, shared_representation(self)],
                name=f"{self.name}_with_representation")
        return cache["representation"]

    def _evaluation_logs(self, logs):
        """A test step's logs: without `skipped_steps`, which counts training steps."""
        return {k: v for k, v in logs.items() if k != "skipped_steps"}

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        y = self.labels_by_task(y)
        weights = self._sample_weights_by_task(sample_weight)
        if all(w is None for w in weights.values()):
            return super().compute_metrics(x, y, y_pred, None)
        # Keras' metrics take a weight for every output or none: a task that a
        # sample-weight dict leaves out weighs 1 per example, as its loss does.
        ones = ops.ones(ops.shape(keras.tree.flatten(x)[0])[:1], keras.config.floatx())
        return super().compute_metrics(
            x, y, y_pred, {n: ones if w is None else w for n, w in weights.items()})

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if not kwargs.get("_use_cached_eval_dataset"):
            # (fit's validation data, checked by fit, is cached.)
            x, weights = self._checked_data(x, y, kwargs.get("sample_weight"))
            if weights is not None:
                kwargs["sample_weight"] = weights
        try:
            logs = super().evaluate(x, y, *args, **kwargs)
        except Exception as error:
            raise_data_error(error)
            raise
        if isinstance(logs, (dict, list)) and not logs:
            # No step ran: data of unknown length that turned out empty.
            raise empty_data_error(
                "validation" if kwargs.get("_use_cached_eval_dataset") else "evaluation")
        return logs

    def fit(self, x=None, y=None, *args, callbacks=None, **kwargs):
        x, weights = self._checked_data(x, y, kwargs.get("sample_weight"))
        if weights is not None:
            kwargs["sample_weight"] = weights
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)) and len(validation) in (2, 3):
            val_x, val_weights = self._checked_data(*validation, *(None,) * (3 - len(validation)))
            validation = (val_x, validation[1]) + (
                (val_weights,) if val_weights is not None else ())
        elif validation is not None:
            validation = self._checked_data(validation, None, None)[0]
        if validation is not None:
            kwargs["validation_data"] = validation
        check_not_empty(x, "training")
        check_not_empty(validation, "validation")
        # The model's own callbacks run first: a checkpoint at the end of an epoch
        # must hold the weighting method's state after its epoch update. The
        # trainer's own callbacks run before that update: a non-finite step recorded
        # in the epoch raises with the state from before it.
        ours = self._trainer_callbacks() + [_EpochEndCallback()]
        given = isinstance(callbacks, keras.callbacks.CallbackList)
        theirs = [c for c in (callbacks.callbacks if given else callbacks or [])
                  if not isinstance(c, tuple(type(c) for c in ours))]
        if given:
            # Used as given (Keras' fit does too), with this model's own callbacks.
            for c in ours:
                c.set_model(self)
                c.set_params(callbacks.params)
            callbacks.callbacks = ours + theirs
        elif getattr(self, "fast_dispatch", False):
            callbacks = _callback_list.for_fit(self, ours + theirs, (x, y) + args, kwargs)
        else:
            callbacks = ours + theirs
        try:
            return super().fit(x, y, *args, callbacks=callbacks, **kwargs)
        except StopIteration as error:
            # Keras' JAX trainer builds the model from the first training batch.
            self.train_function = self.test_function = None
            raise empty_data_error("training") from error
        except Exception as error:
            # A step that failed while tracing (bad labels, bad input) must not leave
            # a half-built train function behind for the next `fit`.
            self.train_function = self.test_function = None
            raise_data_error(error)
            raise
