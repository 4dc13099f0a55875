"""Model stage: one module per family declaring it (``family.Family``), the registry that collects them, the
``base.ModelAdapter`` contract, pooling over real frames and the baselines."""
