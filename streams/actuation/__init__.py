"""The actuator stage process: admits the guard's signed decisions and runs their workflows."""
