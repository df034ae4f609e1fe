"""Commands of the translator (train, export, translate, evaluate)."""

commands: list = []
