"""check-lab: run a lab of the Docker course on a lab machine and verify what the lab claims."""

__version__ = "0.1.0"
