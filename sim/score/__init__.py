"""Decision scoring: how good were the decisions, judged against the simulator's ground truth.

``inputs`` reads decisions and the recording's inventory, ``metrics`` computes the figures,
``naive`` is the table-driven baseline competitors ship, ``compare`` puts the two side by side.
"""
