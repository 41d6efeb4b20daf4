"""The network, its checkpoints and inference. Imports torch only; no HTTP, no training loop."""

from codelstm.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from codelstm.model.config import ModelConfig
from codelstm.model.network import ByteLM, State

__all__ = ["ByteLM", "CheckpointError", "ModelConfig", "State", "load_checkpoint", "save_checkpoint"]
