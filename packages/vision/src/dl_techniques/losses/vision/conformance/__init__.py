"""Conformance cases of the vision losses, for the kit and `dl-losses check`."""
