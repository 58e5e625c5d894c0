"""The backend-agnostic multi-task trainer (`trainer.py`) and its helpers."""

from keras_mtl.trainers.trainer import MultiTaskTrainer

__all__ = ["MultiTaskTrainer"]
