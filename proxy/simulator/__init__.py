"""The simulated upstream: a stand-in for the OpenAI and BytePlus ModelArk APIs (a tool, not
part of the gateway)."""

from proxy.simulator.responses import SIM_STATE, count_tokens, create_simulator

__all__ = ["SIM_STATE", "create_simulator", "count_tokens"]
