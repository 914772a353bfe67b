"""Conformance cases of the self-supervised losses, for the kit and `dl-losses check`."""
