"""Inference with a trained segmenter: uint8 images in, label maps at native size out."""

from __future__ import annotations

import numpy as np

from .checkpoint import load_checkpoint
from .data import resize_image
from .train import TrainConfig, build_model, normalise, resolve_device


class Segmenter:
    """``Segmenter.load(ckpt).predict([img, ...])`` -> uint8 label maps (0 bg, 1.. classes).

    Images are resized to the training size, and the logits are resized back (bilinear)
    to each image's own size before the arg-max, so scores are computed at native resolution.
    """

    def __init__(self, state: dict, device: str = "auto", source: str = ""):
        import torch

        self.config = TrainConfig.from_dict(state["config"])
        self.classes = list(state["classes"])
        self.source = source
        self.step = int(state["step"])
        self.device = resolve_device(device)
        self.model = build_model(self.config).to(self.device)
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self._torch = torch

    @classmethod
    def load(cls, checkpoint, device: str = "auto") -> "Segmenter":
        return cls(load_checkpoint(checkpoint), device, str(checkpoint))

    @property
    def num_classes(self) -> int:
        return len(self.classes) + 1

    def predict(self, images: list[np.ndarray], batch: int = 16) -> list[np.ndarray]:
        """Label maps, one per uint8 (H, W, 3) image, each at its image's size."""
        torch = self._torch
        from torch.nn import functional as F

        out: list[np.ndarray] = []
        with torch.inference_mode():
            for i in range(0, len(images), batch):
                chunk = images[i:i + batch]
                x = torch.stack([resize_image(img, self.config.size) for img in chunk]).to(self.device)
                logits = self.model(normalise(x)).float()
                for img, lg in zip(chunk, logits):
                    h, w = img.shape[:2]
                    if lg.shape[-2:] != (h, w):
                        lg = F.interpolate(lg[None], size=(h, w), mode="bilinear", align_corners=False)[0]
                    out.append(lg.argmax(0).to(torch.uint8).cpu().numpy())
        return out
