"""Many commands in one round trip, on the local transport: each answer kept apart, exactly."""

from __future__ import annotations

from checker.batch import run_batch
from checker.targets.local import LocalTransport


def test_each_command_keeps_its_own_streams_and_status():
    results = run_batch(LocalTransport(), [
        "echo one; echo err-one >&2",
        ["printf", "%s", "no newline at the end"],
        "exit 7",
        "printf 'caf\\351\\n'",
        "echo '@@check-lab-0000000000000000@@ 0 end 0 0'",  # looks like a boundary, is not this batch's
    ])
    assert [(r.exit_status, r.stdout, r.stderr) for r in results] == [
        (0, "one\n", "err-one\n"),
        (0, "no newline at the end", ""),
        (7, "", ""),
        (0, "caf\ufffd\n", ""),
        (0, "@@check-lab-0000000000000000@@ 0 end 0 0\n", ""),
    ]
    assert all(r.duration >= 0 for r in results)


def test_without_room_for_its_scratch_folder_it_runs_them_one_by_one(monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "does-not-exist"))
    results = run_batch(LocalTransport(), ["echo a", "exit 3"])
    assert [(r.exit_status, r.stdout) for r in results] == [(0, "a\n"), (3, "")]


def test_a_command_takes_the_time_the_machine_clock_says():
    slow, quick = run_batch(LocalTransport(), ["sleep 0.3", "true"])
    assert 0.25 <= slow.duration < 2 and quick.duration < 0.25


def test_batches_recorded_with_the_old_framing_still_parse():
    # Before the shell read the kernel's clock, each command's end said its duration in nanoseconds.
    from checker.batch import parse_batch
    b = "@@check-lab-0123456789abcdef@@"
    old = f"hello\n\n{b} 0 err\n\n{b} 0 end 0 1500000000\n\n{b} 1 err\noops\n\n{b} 1 end 2 1000\n"
    new = f"hello\n\n{b} 0 err\n\n{b} 0 end 0 100.25 101.75\n\n{b} 1 err\noops\n\n{b} 1 end 2 101.75 101.75\n"
    for stdout in (old, new):
        first, second = parse_batch(stdout, b, 2)
        assert (first.exit_status, first.stdout, first.stderr, first.duration) == (0, "hello\n", "", 1.5)
        assert (second.exit_status, second.stdout, second.stderr) == (2, "", "oops\n")
        assert second.duration < 1e-5


def test_read_only_commands_asked_twice_run_once(tmp_path):
    counter = tmp_path / "n"
    count = f"echo x >> {counter}; wc -l < {counter}"
    first, other, again = run_batch(LocalTransport(), [count, "echo other", count], read_only=True)
    assert (first.stdout, other.stdout, again.stdout) == ("1\n", "other\n", "1\n")
    # Commands that may change something each run, in order.
    assert [r.stdout for r in run_batch(LocalTransport(), [count, count])] == ["2\n", "3\n"]
