"""The pages check-lab writes, in a real browser (Debian's headless Chromium, driven by Selenium through
chromedriver): the class roster opens from the file alone, sorts by student, score and claim when a
column's head is clicked, and shows each student's failed claims with their hints; the drift report's
tables say which sentence holds on which engine."""

from __future__ import annotations

import shutil

import pytest

from checker.records import TargetRun
from checker.reporters import html_roster
from tests.unit.replay import replay

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path, chromium = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path and chromium, "chromium and chromium-driver (scripts/setup installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A class of three: bob's image has a RUN layer too much, alice passed, carol's machine is stopped
    (reports of lab 07 replayed from recorded runs)."""
    tmp = tmp_path_factory.mktemp("roster")
    alice, bob = replay("e1-bookworm-docker20", "pass", tmp), replay("e1-bookworm-docker20", "extra-run-layer", tmp)
    runs = [TargetRun("bob", "vagrant:/vms/bob", bob, None, 1, 5.0),
            TargetRun("alice", "vagrant:/vms/alice", alice, None, 0, 5.0),
            TargetRun("carol", "ssh://vagrant@10.0.0.13:22", None, "cannot reach ssh://vagrant@10.0.0.13:22", 3, 1.0)]
    path = tmp / "class-roster.html"
    path.write_text(html_roster.render_many(alice.lab, runs, 3))
    return path


def order(browser) -> list[str]:
    return [row.get_attribute("data-student") for row in browser.find_elements("css selector", "#roster tbody tr")]


def head(browser, text: str = "", claim: str = ""):
    if claim:
        return browser.find_element("css selector", f'#roster thead th[data-claim="{claim}"]')
    return next(h for h in browser.find_elements("css selector", "#roster thead th") if h.text.strip() == text)


def test_the_roster_opens_sorts_and_shows_each_students_failed_claims(browser, page):
    browser.get(page.as_uri())
    assert browser.title == "check-lab 07 – FS layering: class roster"
    assert order(browser) == ["bob", "alice", "carol"]
    cells = browser.find_elements("css selector", '#roster tbody tr[data-student="bob"] td[data-verdict]')
    assert [c.get_attribute("data-verdict") for c in cells].count("fail") == 2 and len(cells) == 10

    head(browser, "student").click()
    assert order(browser) == ["alice", "bob", "carol"]
    head(browser, "student").click()
    assert order(browser) == ["carol", "bob", "alice"]
    head(browser, "score").click()
    assert order(browser) == ["carol", "bob", "alice"]  # not checked, 8, 10
    head(browser, "score").click()
    assert order(browser) == ["alice", "bob", "carol"]
    head(browser, claim="cmd-layer-empty").click()  # who failed it first
    assert order(browser) == ["bob", "alice", "carol"]
    head(browser, claim="five-containers-running").click()
    assert order(browser) == ["alice", "bob", "carol"]  # both passed: by name; the unchecked last

    browser.find_element("link text", "bob").click()
    assert browser.current_url.endswith("#student-bob")
    section = browser.find_element("id", "student-bob")
    assert section.is_displayed()
    failed = [dt.get_attribute("data-claim") for dt in section.find_elements("tag name", "dt")]
    assert failed == ["cmd-layer-empty", "image-sizes-equal"]
    hints = [div.text for div in section.find_elements("css selector", "dd .hint")]
    assert hints[0] == "hint: my-image:1.0's Dockerfile changes files (RUN, COPY or ADD): keep only FROM and CMD in it"
    assert all(div.is_displayed() for div in section.find_elements("css selector", "dd .hint"))
    assert "Not checked: cannot reach" in browser.find_element("id", "student-carol").text
    # alice's and bob's runs were recorded on one machine: each is marked, in the table and in their section.
    assert section.find_element("css selector", "p.shared").text.startswith("Checked on the same Docker engine as alice")
    marked = [row.get_attribute("data-student") for row in browser.find_elements("css selector", "#roster tbody tr")
              if row.find_elements("css selector", "span.shared")]
    assert sorted(marked) == ["alice", "bob"]


def test_the_drift_report_page_shows_the_lab_on_each_engine(browser, tmp_path):
    from checker import cli
    from tests import drift_readme

    page = tmp_path / "drift.html"
    assert cli.main(["drift", *map(str, drift_readme.reports(tmp_path)), "--html", str(page)]) == 0
    browser.get(page.as_uri())
    assert browser.title == "The course on today's engines – check-lab"
    engines = [row.find_elements("tag name", "td")[0].text for row in
               browser.find_elements("css selector", "#engines tbody tr")]
    assert engines == ["E1", "E2", "E3", "E4", "E5"]
    claims = browser.find_elements("css selector", 'table.claims[data-lab="07"] tbody tr')
    assert len(claims) == 10
    assert all(td.get_attribute("data-verdict") == "pass" for row in claims for td in row.find_elements("tag name", "td"))
    build = browser.find_element("css selector", 'table.statements[data-lab="07"] tr[data-statement="build-steps"]')
    cells = build.find_elements("tag name", "td")
    assert [td.get_attribute("data-holds") for td in cells] == ["yes", "no", "no", "no", "no"]
    assert cells[1].text.startswith("does not hold") and "BuildKit builds" in cells[1].text
    assert cells[1].find_element("css selector", ".here").is_displayed()
    # Docker 28 on the containerd store (E5) prints `Pull complete` again, Docker 26 there (E3) did not.
    pulls = browser.find_element("css selector", 'table.statements[data-lab="07"] tr[data-statement="pull-complete-lines"]')
    assert [td.get_attribute("data-holds") for td in pulls.find_elements("tag name", "td")] == \
        ["yes", "yes", "no", "yes", "yes"]
