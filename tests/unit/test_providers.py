"""Which private addresses VirtualBox accepts (its networks.conf), and the addresses the Vagrantfile gives."""

from __future__ import annotations

from pathlib import Path

from provision.providers import machine_address, virtualbox_network_problem

LINUX = "Linux"


def test_the_vagrantfiles_addresses():
    assert machine_address(None, {}) == "192.168.135.10"
    assert machine_address("swarmnode2", {}) == "192.168.135.102"
    assert machine_address("swarmmanager", {"LAB_SUBNET": "10.1.2"}) == "10.1.2.100"
    assert machine_address(None, {"LAB_SUBNET": "10.1.2"}) == "10.1.2.10"
    assert machine_address(None, {"LAB_ADDRESS": "none"}) is None
    assert machine_address("default", {"LAB_ADDRESS": "172.30.0.5"}) == "172.30.0.5"


def test_without_networks_conf_only_virtualboxs_default_range(tmp_path: Path):
    conf = tmp_path / "networks.conf"
    problem = virtualbox_network_problem("192.168.135.10", conf, (7, 0, 20), LINUX)
    assert problem.startswith("VirtualBox allows host-only addresses only in 192.168.56.0/21")
    assert f"({conf} is missing)" in problem and f"add the line `* 192.168.135.0/24` to {conf}" in problem
    assert "\n" not in problem
    assert virtualbox_network_problem("192.168.56.10", conf, (7, 0, 20), LINUX) is None


def test_a_line_of_networks_conf_allows_the_range(tmp_path: Path):
    conf = tmp_path / "networks.conf"
    conf.write_text("# classroom\n* 10.0.0.0/8 192.168.135.0/24\n")
    assert virtualbox_network_problem("192.168.135.101", conf, (7, 1, 0), LINUX) is None
    assert virtualbox_network_problem("10.9.8.7", conf, (7, 1, 0), LINUX) is None
    problem = virtualbox_network_problem("172.16.0.10", conf, (7, 1, 0), LINUX)
    assert "only in 10.0.0.0/8, 192.168.135.0/24" in problem and "is missing" not in problem
    # The file replaces the default: 192.168.56.0/21 is no longer allowed.
    assert virtualbox_network_problem("192.168.56.10", conf, (7, 1, 0), LINUX) is not None


def test_no_check_where_virtualbox_has_no_such_limit(tmp_path: Path):
    conf = tmp_path / "networks.conf"
    assert virtualbox_network_problem("192.168.135.10", conf, (6, 1, 26), LINUX) is None
    assert virtualbox_network_problem("192.168.135.10", conf, (7, 0, 20), "Windows") is None
    assert virtualbox_network_problem(None, conf, (7, 0, 20), LINUX) is None
    # An unknown version is taken as a recent one.
    assert virtualbox_network_problem("192.168.135.10", conf, None, LINUX) is not None
