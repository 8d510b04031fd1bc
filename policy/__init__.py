"""Policy core: node lifecycle, action ladder, the single-writer guard and the policy file. Pure."""
