"""Training: the per-plane model and its layers, the data pipeline, the training recipe, devices, the plane combiner, the report, and freezing into the bundle."""
