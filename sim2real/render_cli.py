"""Commands for rendering and inspecting data sets."""

commands: list = []
