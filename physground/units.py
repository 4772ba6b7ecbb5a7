"""SI units of every array a Rollout stores, by name: written into each HDF5 dataset's
``units`` attribute, the dataset card and the exports, so other tools need no guesswork.

Units follow the UDUNITS spelling used by CF conventions ("m s-1"); ``"1"`` marks a
dimensionless quantity and ``"index"``/``"bool"`` integer or boolean topology. A scenario
may declare further names in its ``units`` class attribute; an unknown name gets
``"unspecified"`` rather than a guessed unit.
"""

from __future__ import annotations

from collections.abc import Mapping

UNITS: dict[str, str] = {
    # rigid bodies
    "pos": "m", "quat": "1", "vel": "m s-1", "angvel": "rad s-1",
    "mass": "kg", "inertia": "kg m2", "radius": "m", "half_size": "m",
    "gravity": "m s-2", "ground_height": "m", "restitution": "1", "spacing": "m",
    "pivot": "m", "length": "m", "damping": "N m s rad-1", "stability_margin": "m",
    "stands": "bool", "incline_down": "1", "incline_normal": "1", "incline_point": "m",
    # cloth and SPH particles
    "x": "m", "v": "m s-1", "faces": "index", "edges": "index", "springs": "index",
    "rest_length": "m", "spring_rest_length": "m", "spring_stiffness": "N m-1",
    "spring_damping": "N s m-1", "pinned": "bool", "sphere_center": "m", "sphere_radius": "m",
    "wind": "m s-1", "friction": "1", "air_drag": "kg m-2 s-1", "thickness": "m",
    "resolution": "1", "size": "m", "shear_ratio": "1", "bending_rigidity": "N m",
    "bend_stiffness": "N m-1", "face_u": "m s-1", "face_v": "m s-1",
    "particle_mass": "kg m-1", "smoothing_length": "m", "kernel_support": "m",
    "rest_density": "kg m-2", "sound_speed": "m s-1", "box": "m",
    # smoke grid
    "density": "1", "velocity": "m s-1", "grid_spacing": "m", "grid_size": "1",
    "walls_closed": "bool", "buoyancy": "m s-2", "mask_threshold": "1",
    # images
    "frames": "1", "masks": "index",
}


def unit_of(name: str, extra: Mapping[str, str] | None = None) -> str:
    """The unit of the array called ``name`` (``extra`` first, e.g. a scenario's own)."""
    if extra and name in extra:
        return extra[name]
    return UNITS.get(name, "unspecified")
