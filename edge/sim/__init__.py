"""Virtual sensors for the six towns: a seeded world of assets and devices, and a simulation that emits uplinks.

Entry points: `build_world(seed, scale)` and `Simulation(world, seed, start, encode).advance(until)`.
"""

from edge.sim.simulation import MODEL_QUANTITIES, Encoder, Simulation
from edge.sim.world import World, build_world

__all__ = ["MODEL_QUANTITIES", "Encoder", "Simulation", "World", "build_world"]
