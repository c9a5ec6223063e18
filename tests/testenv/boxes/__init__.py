"""Vagrant boxes for the libvirt provider, built offline from Debian packages, and libvirt started by hand.

build_box.py builds a box (see its docstring), libvirtd.py starts and stops virtlogd/libvirtd without systemd,
smoke.py proves a box with `vagrant up --provider=libvirt` under QEMU/TCG. README.md has the details.
"""
