"""lab-env: bring the lab machine up, provision it, inspect it, destroy it (over python-vagrant).

    lab-env up [--provider virtualbox|libvirt|docker] [settings]
    lab-env provision [settings]     # the guest provisioner over SSH, with its progress
    lab-env status | ssh-config
    lab-env destroy [--force]

Settings: flags > LAB_* environment variables > `.lab-env` beside the Vagrantfile > defaults; the same
names the Vagrantfile reads (`--registry-mirror` is LAB_REGISTRY_MIRROR, and so on).

Exit codes (checker/exitcodes.py, shared with check-lab): 0 done, 1 a provisioning step failed, 2 usage
error, 3 Vagrant or the machine failed, 130 interrupted.

The Vagrant boundary itself is provision/ (python-vagrant, the guest provisioner); this CLI drives it and
reaches the machine through the checker's Vagrant target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from checker.exitcodes import ExitStatus, for_provisioning
from provision.guest import OPTIONS

# Settings of the machine itself (the Vagrantfile reads them), beside the guest provisioner's OPTIONS.
VM_SETTINGS = {
    "box": ("LAB_BOX", "box for virtualbox/libvirt (default: provision/boxes.json)"),
    "cpus": ("LAB_CPUS", "virtual CPUs (default 2)"),
    "memory": ("LAB_MEMORY", "memory in MB (default 2048)"),
    "docker_image": ("LAB_DOCKER_IMAGE", "image of the container VM (docker provider)"),
    "libvirt_uri": ("LAB_LIBVIRT_URI", "libvirt daemon to use (default qemu:///system)"),
    "boot_timeout": ("LAB_BOOT_TIMEOUT", "seconds to wait for the machine's SSH (default 600)"),
}
PROVIDERS = ("virtualbox", "libvirt", "docker")


class UsageError(Exception):
    """lab-env's own usage errors (exit 2)."""


def read_lab_env(root: Path) -> dict[str, str]:
    """The `.lab-env` file as the Vagrantfile reads it: KEY=VALUE lines, # comments."""
    out: dict[str, str] = {}
    path = root / ".lab-env"
    if not path.is_file():
        return out
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def resolve_settings(root: Path, args: argparse.Namespace) -> dict[str, str]:
    settings = read_lab_env(root)
    settings.update({k: v for k, v in os.environ.items() if k.startswith("LAB_")})
    for name, (var, *_rest) in {**OPTIONS, **VM_SETTINGS}.items():
        value = getattr(args, name, None)
        if value is not None:
            settings[var] = ",".join(value) if isinstance(value, list) else str(value)
    return {k: v for k, v in settings.items() if v != ""}


def add_setting_flags(parser: argparse.ArgumentParser, vm: bool) -> None:
    group = parser.add_argument_group("settings (flag = LAB_* variable)")
    for name, (var, _default, choices, help_text) in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        kwargs: dict = {"dest": name, "default": None, "help": f"{help_text} [{var}]"}
        if name in ("registry_mirror", "insecure_registry"):
            kwargs.update(action="append", metavar="URL" if name == "registry_mirror" else "HOST:PORT")
        elif choices:
            kwargs.update(choices=[c for c in choices if c])
        group.add_argument(flag, **kwargs)
    if vm:
        for name, (var, help_text) in VM_SETTINGS.items():
            group.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=f"{help_text} [{var}]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lab-env", description="Bring up and provision the Docker lab machine.")
    parser.add_argument("--machine", metavar="NAME", help="the Vagrant machine (default: docker-vm, Vagrant's default)")
    parser.add_argument("--machines", metavar="SET",
                        help="several machines, one after the other: swarm (swarmmanager, swarmnode1, swarmnode2, "
                             "the machines of labs 11 and 12) or NAME,NAME,…")
    parser.add_argument("--no-color", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="create or start the machine, then provision it")
    up.add_argument("--provider", choices=PROVIDERS, help="default: VirtualBox, else libvirt with KVM, else docker")
    add_setting_flags(up, vm=True)
    prov = sub.add_parser("provision", help="run the provisioning steps again (over SSH)")
    add_setting_flags(prov, vm=False)
    sub.add_parser("status", help="the machine's state")
    sub.add_parser("ssh-config", help="the machine's SSH settings")
    destroy = sub.add_parser("destroy", help="remove the machine")
    destroy.add_argument("-f", "--force", action="store_true", help="do not ask")
    return parser


class App:
    def __init__(self, args: argparse.Namespace):
        from rich.console import Console

        from provision.machines import find_root
        from provision.vagrant import Machine

        self.args = args
        self.console = Console(highlight=False, no_color=args.no_color or None)
        root = find_root()
        if root is None:
            raise UsageError("no Vagrantfile in this folder or above: run lab-env in the course folder")
        self.root = root
        self.settings = resolve_settings(root, args)
        self.machine = Machine(root, args.machine, env=self.settings)

    def say(self, text: str, style: str = "") -> None:
        self.console.print(text, style=style, soft_wrap=True)

    def up(self) -> int:
        from provision import providers
        from provision.vagrant import VagrantError

        provider = self.args.provider or self.settings.get("LAB_PROVIDER") or os.environ.get("VAGRANT_DEFAULT_PROVIDER")
        if provider:
            self.say(f"provider: {provider} (as asked)")
        else:
            try:
                provider, why = providers.choose(self.machine.plugins(), env={**os.environ, **self.settings})
            except LookupError as exc:
                raise VagrantError(str(exc)) from None
            self.say(f"provider: {provider} ({why})")
        if provider == "virtualbox":
            problem = providers.virtualbox_network_problem(
                providers.machine_address(self.args.machine, self.settings), version=providers.virtualbox_version())
            if problem:
                raise VagrantError(problem, "network")
        box = providers.box_for(provider, self.settings)
        if box:
            self.say(f"box: {box}", "dim")
        started = time.monotonic()

        def progress(line: str) -> None:
            from provision.vagrant import parse_machine_readable

            for _target, kind, data in parse_machine_readable(line):
                if kind == "ui" and len(data) >= 2 and data[0] in ("info", "output") and data[1].strip():
                    self.say("  " + data[1].strip().splitlines()[0], "dim")

        try:
            self.machine.up(provider=provider, provision=False, on_line=progress)
        except VagrantError as exc:
            if exc.kind == "box" and box:
                raise VagrantError(f"{exc} (box {box} for {provider}: add it with `vagrant box add {box} FILE`, "
                                   f"or set LAB_BOX / LAB_BOX_URL)", "box") from None
            raise
        self.say(f"machine up in {time.monotonic() - started:.1f}s; provisioning")
        code = self.provision()
        if code == ExitStatus.OK:
            self.say("ready: run `check-lab 07`", "bold green")
        return code

    def transport(self):
        from checker.targets.vagrant import VagrantTransport

        return VagrantTransport(self.machine, env=self.settings)

    def provision(self) -> int:
        from provision.remote import provision

        marks = {"changed": ("~", "yellow"), "unchanged": ("✓", "green"), "failed": ("✗", "red")}

        def show(outcome) -> None:
            mark, style = marks.get(outcome.status, ("?", ""))
            self.console.print(f" [{style}]{mark} {outcome.status:<9}[/] {outcome.step}: {outcome.detail} "
                               f"[dim]{outcome.seconds:.2f}s[/]", soft_wrap=True)

        started = time.monotonic()
        transport = self.transport()
        try:
            result = provision(transport, self.settings, show)
        finally:
            transport.close()
        seconds = time.monotonic() - started
        failed = result.failed
        if failed:
            print(f"lab-env: provisioning step {failed.step} failed: {failed.detail}", file=sys.stderr)
            return for_provisioning(failed_step=True)
        changed = sum(1 for o in result.outcomes if o.status == "changed")
        calls = len(result.package_manager_calls)
        self.say(f"provisioned in {seconds:.2f}s: {changed} step(s) changed, "
                 f"{len(result.outcomes) - changed} unchanged, package manager called {calls} time(s)")
        return ExitStatus.OK

    def status(self) -> int:
        state, provider = self.machine.state()
        cached = self.machine.cached_ssh_config()
        self.say(f"{self.machine.name or 'default'}: {state} ({provider})")
        if cached:
            cfg = cached[0]
            self.say(f"  ssh: {cfg.user}@{cfg.host}:{cfg.port} (cached for check-lab)", "dim")
        return ExitStatus.OK

    def ssh_config(self) -> int:
        cfg = self.machine.ssh_config()
        lines = [f"Host {self.machine.name or 'default'}", f"  HostName {cfg.host}", f"  User {cfg.user}",
                 f"  Port {cfg.port}", "  UserKnownHostsFile /dev/null", "  StrictHostKeyChecking no",
                 "  IdentitiesOnly yes"] + [f"  IdentityFile {k}" for k in cfg.key_files]
        print("\n".join(lines))
        return ExitStatus.OK

    def destroy(self) -> int:
        if not self.args.force:
            if not sys.stdin.isatty():
                raise UsageError("destroy removes the machine and everything in it: add --force to confirm")
            if input(f"Destroy the {self.machine.label}? [y/N] ").strip().lower() not in ("y", "yes"):
                self.say("kept")
                return ExitStatus.OK
        self.machine.destroy()
        self.say("destroyed")
        return ExitStatus.OK


SWARM = ["swarmmanager", "swarmnode1", "swarmnode2"]  # the Vagrantfile's (provision.providers.SWARM_HOSTS)


def machine_set(text: str) -> list[str]:
    """`--machines`: swarm (the course's swarm machines) or NAME,NAME,…"""
    names = SWARM if text == "swarm" else [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--machines: swarm, or machine names separated by commas")
    return names


def main(argv: list[str] | None = None) -> int:
    from checker.errors import CheckLabError
    from provision.remote import ProvisionError
    from provision.vagrant import VagrantError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.machine and args.machines:
            raise UsageError("--machine or --machines, not both")
        names = machine_set(args.machines) if args.machines else [args.machine]
        codes = []
        for name in names:
            args.machine = name
            app = App(args)
            codes.append({"up": app.up, "provision": app.provision, "status": app.status,
                          "ssh-config": app.ssh_config, "destroy": app.destroy}[args.command]())
        return max(codes)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitStatus.USAGE
    except UsageError as exc:
        print(f"lab-env: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    except CheckLabError as exc:
        print(f"lab-env: {exc}", file=sys.stderr)
        return exc.exit_code
    except (VagrantError, ProvisionError) as exc:
        print(f"lab-env: {exc}", file=sys.stderr)
        return ExitStatus.TARGET
    except KeyboardInterrupt:
        print("lab-env: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
