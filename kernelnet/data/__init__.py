"""Dataset registry, loaders and input validation."""
