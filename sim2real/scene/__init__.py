"""The scene as plain data: geometry, procedural shapes, mesh files and the seeded sampler.

Nothing here imports bpy; :mod:`sim2real.blender` turns a :class:`SceneDescription` into
Blender objects.
"""

from .description import Camera, Instrument, Light, Material, MeshObject, SceneDescription  # noqa: F401
