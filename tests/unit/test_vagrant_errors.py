"""Vagrant's machine-readable failures turned into one line and a kind (replayed from real runs)."""

from provision.vagrant import explain

LIBVIRT_DOWN = (
    "1795819678,,ui,error,Error while connecting to Libvirt: Error making a connection to libvirt URI "
    "qemu:///system:\\nCall to virConnectOpen failed: Failed to connect socket to "
    "'/var/run/libvirt/libvirt-sock': No such file or directory\n"
    "1795819678,,error-exit,VagrantPlugins::ProviderLibvirt::Errors::FogLibvirtConnectionError,Error while "
    "connecting to Libvirt: Error making a connection to libvirt URI qemu:///system:\\nCall to virConnectOpen "
    "failed: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n"
)


def test_libvirtd_not_answering_is_a_provider_problem():
    kind, reason = explain("up", LIBVIRT_DOWN)
    assert kind == "provider"
    assert "\n" not in reason
    assert reason.startswith("the libvirt provider is not available here: libvirtd does not answer at qemu:///system")
    assert "libvirt-sock" in reason


def test_unknown_failure_keeps_vagrants_message():
    out = "1,,error-exit,Vagrant::Errors::Something,It broke:\\nbadly\n"
    assert explain("up", out) == ("other", "It broke: badly")
