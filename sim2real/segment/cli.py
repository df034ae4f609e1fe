"""Commands of the downstream segmentation proof."""

commands: list = []
