"""``breakfix up`` / ``down``: the whole local stack on the embedded defaults, and its context file."""
