"""The test environment's Debian mirror comes from the machine's own apt sources, in either format."""

from __future__ import annotations

import pytest

from tests.testenv.mirrors import debian_mirror

SECURITY_FIRST = """Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
"""


def test_deb822_sources_give_the_first_debian_archive(tmp_path, monkeypatch):
    monkeypatch.delenv("CHECK_LAB_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(SECURITY_FIRST)
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_one_line_sources_and_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("CHECK_LAB_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("# deb http://old.example/debian bookworm main\n"
                                          "deb [arch=amd64] http://local.example/debian bookworm main\n")
    assert debian_mirror(tmp_path) == "http://local.example/debian"
    monkeypatch.setenv("CHECK_LAB_DEBIAN_MIRROR", "http://set.example/debian")
    assert debian_mirror(tmp_path) == "http://set.example/debian"


def test_no_debian_archive_is_one_line_cause(tmp_path, monkeypatch):
    monkeypatch.delenv("CHECK_LAB_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(SystemExit, match="CHECK_LAB_DEBIAN_MIRROR"):
        debian_mirror(tmp_path)
