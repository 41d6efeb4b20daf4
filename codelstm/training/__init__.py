"""Corpus building, training and evaluation: separate steps, each readable top to bottom."""
