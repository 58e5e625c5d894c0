"""Layers for multi-task architectures, each registered serializable."""

from keras_mtl.layers.batch_norm import GlobalBatchNormalization
from keras_mtl.layers.cross_stitch import CrossStitch
from keras_mtl.layers.dselect_k_gate import DSelectKGate
from keras_mtl.layers.embedding_head import EmbeddingHead
from keras_mtl.layers.expert_gate import ExpertGate
from keras_mtl.layers.max_unpooling_2d import MaxUnpooling2D
from keras_mtl.layers.soft_sharing_penalty import SoftSharingPenalty
from keras_mtl.layers.task_attention import TaskAttention

__all__ = [
    "CrossStitch", "DSelectKGate", "EmbeddingHead", "ExpertGate", "GlobalBatchNormalization", "MaxUnpooling2D",
    "SoftSharingPenalty", "TaskAttention",
]
