"""The node agent: verifies the actuator stage's signed commands and runs them on its node."""
