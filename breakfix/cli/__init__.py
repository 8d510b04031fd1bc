"""The ``breakfix`` console script: one module per command family, registered in ``main``."""
