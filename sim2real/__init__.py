"""sim2real: labelled laparoscopy renders from Blender, made realistic by unpaired translation."""

__version__ = "0.1.0"
