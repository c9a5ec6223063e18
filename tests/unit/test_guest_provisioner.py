"""The guest provisioner's pure parts: options from the environment, daemon.json merging."""

from __future__ import annotations

from provision import guest


def test_options_from_environment():
    opts = guest.Options.from_env({"LAB_REGISTRY_MIRROR": "http://a:5000, http://b:5000",
                                   "LAB_INSECURE_REGISTRY": "a:5000"})
    assert opts.registry_mirror == ["http://a:5000", "http://b:5000"]
    assert opts.insecure_registry == ["a:5000"]
    assert opts.storage_driver == "overlay2" and opts.user == "vagrant"


def test_daemon_json_keeps_keys_we_do_not_manage():
    opts = guest.Options.from_env({"LAB_REGISTRY_MIRROR": "http://m:5000"})
    current = {"log-driver": "json-file", "insecure-registries": ["old:5000"]}
    desired = guest.desired_daemon_config(opts, current)
    assert desired == {"log-driver": "json-file", "storage-driver": "overlay2",
                       "registry-mirrors": ["http://m:5000"]}
    assert guest.desired_daemon_config(opts, desired) == desired  # a second run changes nothing
