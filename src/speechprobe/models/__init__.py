"""Model stage: one adapter file per family under one typed contract (``base.ModelAdapter``)."""
