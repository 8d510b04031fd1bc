"""Fault injectors: each turns one scenario entry into extra events, sample patches and labels."""
