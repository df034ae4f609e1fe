"""Sim-to-real translation (PyTorch): model, losses, data, trainer, inference."""
