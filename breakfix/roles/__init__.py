"""Every long-running process is a role (``breakfix run --role ROLE``) with one settings model."""
