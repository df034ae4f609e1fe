"""Downstream segmentation: train on rendered/translated data, score on real frames."""
