"""The neuron explorer's logic: text features, neuron ranking by correlation, synthetic task models.

Knows the model (`codelstm.model`) and the synthetic experiments (`codelstm.training.tasks`), not HTTP:
the service's router and the `codelstm explore` command are thin layers over it.
"""
