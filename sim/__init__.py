"""The simulated fleet, its scenarios, scoring against ground truth, and the offline replay harness."""
