"""The cases of ``tools/bench.py``, one module per family, each with a ``CASES`` list.

Every case times one forward pass plus a gradient, compiled the way a
training step is on the current backend (see ``benchmarking.py``), against a
baseline measured in the same run.
"""
