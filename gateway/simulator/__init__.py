"""Simulators of what sits in front of the gateway daemon (tests, bench, demo): the Semtech packet forwarder."""

from gateway.simulator.forwarder import (
    ForwarderSimulator,
    PushOutcome,
    encrypt_uplink,
    rxpk_of,
    simulated_bin_assets,
    simulated_sessions,
)

__all__ = [
    "ForwarderSimulator",
    "PushOutcome",
    "encrypt_uplink",
    "rxpk_of",
    "simulated_bin_assets",
    "simulated_sessions",
]
