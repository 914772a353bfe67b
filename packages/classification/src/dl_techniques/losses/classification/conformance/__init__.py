"""Conformance cases of the classification losses, for the kit and `dl-losses check`."""
