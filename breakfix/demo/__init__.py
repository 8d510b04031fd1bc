"""``breakfix demo``: the whole pipeline on one machine, on a simulated fleet, in one command."""
