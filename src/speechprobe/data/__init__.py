"""Data stage: clips, audio decoding, tasks, manifests and the synthetic suite."""
