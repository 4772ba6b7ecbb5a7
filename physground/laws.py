"""The registry of physical laws a scenario can declare.

Metrics (``requires_laws`` with ``laws_mode`` "any" or "all") and physics losses select
themselves from the laws a scenario declares, so a law is a name with a meaning that both
sides agree on. Third-party packages add laws through the entry-point group
``physground.laws`` (or `LAWS.register`), next to the scenarios that obey them.
"""

from __future__ import annotations

from dataclasses import dataclass

from physground.registry import Registry


@dataclass(frozen=True, kw_only=True)
class Law:
    """A physical law: its registry name and what holds when a scenario declares it."""

    name: str
    description: str


LAWS: Registry[Law] = Registry("law")

_BUILTIN = {
    "energy_conserved": "total mechanical energy constant",
    "energy_nonincreasing": "dissipative: energy never grows",
    "momentum_conserved": "total linear momentum constant (no external force in the plane)",
    "ballistic": "free flight under gravity between contacts",
    "non_penetration": "bodies stay out of the ground and of each other",
    "incompressible": "divergence-free velocity",
    "inextensible": "cloth edges keep their rest length",
    "mass_conserved": "total density / particle count constant",
    "object_permanence": "objects persist through time",
    "mass_in_domain": "material stays in its container static['domain'] (lo, hi)",
    "collider_non_penetration": "material stays above ground, out of static['colliders']",
    "solid_volume": "a solid: static['tets'] mesh its material points (volume defined)",
}
for _name, _description in _BUILTIN.items():
    LAWS.register(_name, Law(name=_name, description=_description), tags=["builtin"])
