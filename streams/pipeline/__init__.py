"""The pipeline process: Faust workers running the node stage and the guard over ports."""
