"""Provisioning of the lab machine: the Vagrant boundary (host side) and guest.py (inside the VM)."""
