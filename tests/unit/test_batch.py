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
