"""The multi-task trainer of the Keras backend in use.

`MultiTaskModel` (`keras_mtl/model.py`) holds what every backend shares: the tasks,
the shared / task variable partition, compile-time resolution, label routing and
checks, the task loss vector and per-task logging. `Trainer` adds what one backend
does: the train and test steps (losses, gradients, their combination for gradient
methods, the optimizers' update, the non-finite policy) and the train function.
"""

import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from keras_mtl.backend.tensorflow.trainer import TensorFlowTrainer as Trainer
elif _BACKEND == "jax":
    from keras_mtl.backend.jax.trainer import JAXTrainer as Trainer
elif _BACKEND == "torch":
    from keras_mtl.backend.torch.trainer import TorchTrainer as Trainer
else:
    raise ImportError(
        f"keras_mtl trains on the TensorFlow, JAX and PyTorch backends of Keras. Received: "
        f"KERAS_BACKEND={_BACKEND!r}")

__all__ = ["Trainer"]
