"""Conformance cases of the generative losses, for the kit and `dl-losses check`."""
