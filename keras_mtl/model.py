"""`MultiTaskModel`: a functional Keras model whose outputs are tasks.

What a model is lives here (its tasks, the shared / task variable partition, its
config); how it trains is its trainer: the backend's (`keras_mtl/backend/<name>/
trainer.py`) over the backend-agnostic `keras_mtl/trainers/trainer.py`.
"""

import keras

from keras_mtl import _private
from keras_mtl.backend import Trainer
from keras_mtl.graph import is_functional, variable_partition
from keras_mtl.task import Task, check_task_names, loaded_spec, saved_spec


@keras.saving.register_keras_serializable(package="keras_mtl")
class MultiTaskModel(Trainer, keras.Model):
    """A multi-output functional model whose outputs are tasks.

    `train_step` computes each task's loss separately, combines them with a
    weighting method and applies the gradients with separate optimizers for the
    shared variables (those feeding more than one task output, derived from the
    graph), the task-specific ones, and the weighting method's own variables.
    Logs `<task>_loss`, `<task>_weight` and each task's metrics.

    This class holds what a model is (its tasks and their specs, the variable
    partition, the config); compile, the train and test steps and logging are its
    trainer's (`keras_mtl.trainers.MultiTaskTrainer` under the backend's trainer).

    Build one with `keras_mtl.build(...)`, or wrap your own multi-output functional
    model with `MultiTaskModel.from_model(model)`.

    Args:
        inputs, outputs: as for a functional `keras.Model`; `outputs` a dict by
            task name (or a list of outputs whose layer names are the task names).
        tasks: task specs (`Task.spec()` dicts, or `Task` objects) giving each
            task's default loss, metrics, loss weight and label slice.
    """

    def __init__(self, *args, tasks=None, **kwargs):
        super().__init__(*args, **kwargs)
        names = list(self.output_names)
        check_task_names(names)
        specs = [t.spec() if isinstance(t, Task) else loaded_spec(t) for t in (tasks or [])]
        by_name = {s["name"]: s for s in specs}
        unknown = set(by_name) - set(names)
        if unknown:
            raise ValueError(f"tasks {sorted(unknown)} are not outputs of the model. Outputs: {names}")
        self._set_task_specs([by_name.get(n) or Task(n).spec() for n in names])
        self.shared_variables, self.task_variables = variable_partition(self)

    @_private.no_automatic_dependency_tracking
    def _set_task_specs(self, specs):
        # Untracked: the specs' metric objects are not the model's own metrics.
        self.task_specs = specs

    @property
    def task_names(self):
        return [s["name"] for s in self.task_specs]

    @classmethod
    def from_model(cls, model, tasks=None, name=None):
        """Wraps a multi-output functional model; its output names become task names.

        Args:
            model: a functional `keras.Model` with one output per task.
            tasks: optional list of `Task` (heads unused) for losses, metrics,
                loss weights and label slices.
        """
        if not is_functional(model):
            raise TypeError(
                f"from_model needs a functional keras.Model. Received: {type(model).__name__}"
            )
        outputs = dict(zip(model.output_names, keras.tree.flatten(model.outputs)))
        return cls(inputs=model.inputs, outputs=outputs, tasks=tasks, name=name or model.name)

    def get_config(self):
        config = super().get_config()
        config["tasks"] = [saved_spec(s) for s in self.task_specs]
        return config
