"""Shipped scenario files (YAML data read by ``breakfix.simulate.scenario``); no code lives here."""
