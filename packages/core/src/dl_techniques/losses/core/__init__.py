"""Core of dl-techniques-losses: registry, serialization, backend helpers, checks."""
