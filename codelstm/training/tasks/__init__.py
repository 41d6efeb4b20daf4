"""The synthetic LSTM experiments of Edwin Chen's "Exploring LSTMs", as tasks for the real training stack."""

from codelstm.training.tasks.synthetic import TASKS, Task, exact_match, train_task, write_corpus

__all__ = ["TASKS", "Task", "exact_match", "train_task", "write_corpus"]
