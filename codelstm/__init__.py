"""codelstm: code completion from a byte-level LSTM."""

__version__ = "0.1.0"
