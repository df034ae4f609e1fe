"""Pixel maths below the Blender layer (numpy only, testable without Blender): render passes
-> the arrays and meta of one sample (:mod:`.postprocess`), image-only camera effects and the
sRGB transfer (:mod:`.camera_effects`). Both :mod:`sim2real.blender` and :mod:`sim2real.rendering`
import it; it imports neither."""
