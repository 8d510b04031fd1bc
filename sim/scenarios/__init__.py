"""Shipped scenario files (YAML data read by ``sim.simulator.scenario``); no code lives here."""
