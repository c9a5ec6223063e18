"""--watch's bookkeeping: which step gives each claim its evidence (for "next:"), and how verdicts seen one
after the other become the final ones (ticked stays ticked; a failure stays until it holds)."""

from __future__ import annotations

from checker import checks
from checker import lab as labs
from checker.records import ClaimResult
from checker.watch import Watch, claim_steps
from tests.variants import LAB07


def plan():
    lab = labs.load(LAB07)
    return labs.Plan(lab, lab.values())


def test_each_claim_is_tied_to_the_step_whose_action_gives_its_evidence():
    p = plan()
    steps = [s.id for s in p.lab.steps]
    tied = {cid: steps[i] for cid, i in claim_steps(p).items()}
    assert tied["layers-pulled-separately"] == tied["layers-stored-in-driver-dir"] == "pull"
    assert tied["base-layers-shared"] == tied["cmd-layer-empty"] == tied["image-sizes-equal"] == "build-image"
    assert tied["five-containers-running"] == tied["container-writable-layer-small"] == "run"
    assert tied["container-dirs-small"] == tied["disk-total-formula"] == "run"
    assert tied["containers-stopped"] == "stop"


class Quiet:
    def watching(self, *a): pass
    def update(self, *a): pass
    def note(self, *a): pass
    def close(self): pass


def test_verdicts_over_time(monkeypatch):
    p = plan()
    watch = Watch(p, transport=None, view=Quiet())
    watch.started = 0.0
    monkeypatch.setattr(watch.runner, "observe_pass", lambda: None)
    ids = [c.id for c in p.claims]

    def seen(verdicts: dict[str, str]):
        monkeypatch.setattr(checks, "evaluate", lambda specs, facts: [
            ClaimResult(cid, cid, verdicts.get(cid, "error"), "", f"{verdicts.get(cid, 'error')} seen", "hint", {},
                        1.0, 1.0) for cid in ids])
        watch.look()

    seen({})  # nothing done yet: all waiting
    assert watch.next_step().startswith("Pull the base image")
    seen({"layers-pulled-separately": "pass", "containers-stopped": "fail"})
    assert watch.states["layers-pulled-separately"].ticked
    assert "containers-stopped" not in watch.reached()  # its step is not reached: its verdict is not shown
    seen({"layers-pulled-separately": "error", "cmd-layer-empty": "fail"})  # the evidence of a ticked claim went
    assert watch.states["layers-pulled-separately"].ticked
    seen({"cmd-layer-empty": "error"})  # a failure seen on evidence stays until it holds
    assert watch.states["cmd-layer-empty"].final.verdict == "fail"
    seen({"cmd-layer-empty": "pass"})
    assert watch.states["cmd-layer-empty"].ticked and watch.states["cmd-layer-empty"].final.verdict == "pass"


def test_a_claim_not_applicable_on_the_engine_is_not_waited_for(monkeypatch):
    """On Podman the claims about /var/lib/docker are not applicable: the watch does not wait for them (it
    ends once every other claim holds), and the next step is the one of a claim still to hold."""
    p = plan()
    watch = Watch(p, transport=None, view=Quiet())
    watch.started = 0.0
    monkeypatch.setattr(watch.runner, "observe_pass", lambda: None)
    na = {"layers-stored-in-driver-dir", "container-dirs-small", "disk-total-formula"}
    verdicts = {c.id: "n/a" for c in p.claims if c.id in na}
    monkeypatch.setattr(checks, "evaluate", lambda specs, facts: [
        ClaimResult(c.id, c.id, verdicts.get(c.id, "error"), "", "", "", {}, 1.0, 1.0) for c in p.claims])
    watch.look()
    assert {cid for cid, st in watch.states.items() if st.settled} == na
    assert not any(st.ticked for st in watch.states.values())
    assert watch.next_step().startswith("Pull the base image")
    verdicts.update({c.id: "pass" for c in p.claims if c.id not in na})
    watch.look()
    assert all(st.settled for st in watch.states.values())
    assert {watch._final(c).verdict for c in p.claims if c.id in na} == {"n/a"}
    # the negative: a claim that does not hold is never settled
    watch.states["containers-stopped"] = type(watch.states["containers-stopped"])()
    verdicts["containers-stopped"] = "fail"
    watch.look()
    assert not watch.states["containers-stopped"].settled


def test_ctrl_c_takes_one_last_look_and_a_second_ctrl_c_skips_it(monkeypatch):
    """The engine's state can trail its events, and the student's last command can end after the last look:
    at Ctrl-C the watch looks once more; a second Ctrl-C during that look skips it, a lost machine too."""
    from checker.errors import TargetError
    p = plan()
    watch = Watch(p, transport=None, view=Quiet())
    watch.started = 0.0
    verdicts = {"containers-stopped": "fail"}
    monkeypatch.setattr(checks, "evaluate", lambda specs, facts: [
        ClaimResult(c.id, c.id, verdicts.get(c.id, "error"), "", "", "", {}, 1.0, 1.0) for c in p.claims])
    monkeypatch.setattr(watch.runner, "observe_pass", lambda: None)
    watch.look()
    assert watch.states["containers-stopped"].final.verdict == "fail"
    verdicts["containers-stopped"] = "pass"  # the stop ended after that look
    assert watch._last_look(stream=object()) == " and a last look"
    assert watch.states["containers-stopped"].ticked and watch.passes == 2

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(watch.runner, "observe_pass", interrupted)
    assert "second Ctrl-C" in watch._last_look(stream=object())

    def lost():
        raise TargetError("the SSH connection dropped")

    monkeypatch.setattr(watch.runner, "observe_pass", lost)
    assert watch._last_look(stream=object()) == " (no last look: the SSH connection dropped)"
    assert watch._last_look(stream=None) == ""  # it never saw the machine: nothing to look again at
