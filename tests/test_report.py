"""``ppp report``: the run on one page, checked as written and in a real headless browser."""

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from conftest import ROOT
from headless import Browser, find_browser
from proxy_pixel_pipeline.report import write_report
from proxy_pixel_pipeline.runtime import registry
from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.simulate import simulate

SECTIONS = ["summary", *(f"stage-{s.number}" for s in registry.STAGES), "transit", "score",
            "settings", "provenance", "warnings"]


def ppp(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "proxy_pixel_pipeline", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"ppp {' '.join(map(str, args))}: {proc.returncode}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny simulated visit through every stage (``ppp run``), and its report."""
    folder = simulate(tmp_path_factory.mktemp("report") / "visit", preset="tiny", seed=41)
    config = folder / "config.yaml"
    config.write_text(config.read_text() + "fit_sampler: lsq\nhot_pixel_sigma: 12\n")
    ppp("run", config)
    proc = ppp("report", config)
    report = Layout(load_config(config).output_dir).report
    assert proc.stdout.strip() == str(report)
    return config, report


class _Page(HTMLParser):
    """Ids of the sections, the images' sources and the text of a page."""

    def __init__(self):
        super().__init__()
        self.ids, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.ids.append(attrs.get("id"))
        if tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    page = _Page()
    page.feed(path.read_text())
    return page, " ".join(" ".join(page.text).split())


def test_the_report_holds_every_part(run):
    config, report = run
    page, text = _parse(report)
    assert page.ids == SECTIONS
    # Every stage current, with its run log (2 decimals of GiB per rank) and counts.
    assert text.count("current") >= len(registry.STAGES) and "Every stage is current" in text
    for number in range(1, len(registry.STAGES) + 1):
        log = json.loads((report.parent / ".runlog" / f"stage{number}.json").read_text())
        assert log["runid"] and log["ranks"][0]["peak_gib"] > 0 and log["wall_s"] > 0
        assert log["runid"] in text                       # the products' RUNID, matched
    for card in ("NSPEC", "NMATCHED", "NHOT", "NINFILL", "NCOSMIC", "NCRTIME", "LACOSMIC",
                 "NCRGROWN", "LOW_WEIGHT", "NPROXHIT", "CFGHASH", "INPUTSUM"):
        assert card in text, card
    # The settings given that differ from the defaults, with the default.
    assert re.search(r"hot_pixel_sigma 12 15(\.0)? 1", text)
    assert "fit_sampler lsq emcee 7" in text
    # Transit results (white first) and the score of simulated data.
    assert re.search(r"Transit results .* white 2479", text)
    assert "white Rp/R* (stage 7) vs truth" in text
    # Every figure embedded: none missing, none a link to another file.
    cfg = load_config(config)
    figures = Layout(cfg.output_dir).figures
    assert len(page.images) == len(list(figures.glob("*.png"))) + len(list(figures.glob("*.gif")))
    assert all(src.startswith(("data:image/png;base64,", "data:image/gif;base64,"))
               for src in page.images)


def test_figures_are_reused_unless_older_than_their_products(run, tmp_path):
    config, report = run
    figures = Layout(load_config(config).output_dir).figures
    before = {p.name: p.stat().st_mtime_ns for p in figures.iterdir()}
    write_report(config, output=tmp_path / "again.html", score=False)
    assert {p.name: p.stat().st_mtime_ns for p in figures.iterdir()} == before
    _, text = _parse(tmp_path / "again.html")
    assert "left out (--no-score)" in text


def test_stale_stages_and_real_data_are_said_so(run, tmp_path):
    """A copy without the truth (real data) and with a stage-5 setting changed."""
    config, _ = run
    copy = tmp_path / "visit"
    shutil.copytree(config.parent, copy, symlinks=True, ignore=shutil.ignore_patterns("truth"))
    (copy / "config.yaml").write_text((copy / "config.yaml").read_text() + "temporal_sigma: 6\n")
    path = write_report(copy / "config.yaml")
    page, text = _parse(path)
    assert page.ids == SECTIONS
    assert "Not every stage is current (5, 6, 7)" in text
    assert "temporal_sigma: 5.0 in the file, 6.0 in config.yaml" in text
    assert "not simulated data" in text
    assert "not shown: stage 5 is stale" in text


@pytest.fixture(scope="module")
def browser():
    executable = find_browser()
    if executable is None:
        pytest.skip("no headless browser: install Debian's chromium (.ci/run does) or set "
                    "PPP_BROWSER to a Chromium-like executable")
    with Browser(executable) as b:
        yield b


def test_the_report_in_a_real_browser(browser, run, tmp_path):
    _, report = run
    browser.open(report.resolve().as_uri())
    images = browser.evaluate(
        "[...document.images].map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
    assert images and all(done and w > 0 and h > 0 for _, done, w, h in images), images
    sections = browser.evaluate(
        "[...document.querySelectorAll('main > section')].map(s => [s.id, s.offsetHeight > 0, "
        "s.querySelector('h2') ? s.querySelector('h2').innerText : ''])")
    assert [s[0] for s in sections] == SECTIONS
    assert all(visible for _, visible, _ in sections)
    for number in range(1, len(registry.STAGES) + 1):
        heading = sections[SECTIONS.index(f"stage-{number}")][2]
        assert heading.startswith(f"Stage {number}: {registry.stage(number).title}")
        assert heading.endswith("current")
    # Nothing wider than the window but the tables that scroll in their own box.
    overflow = browser.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow
    assert browser.errors() == []
    shot = browser.screenshot(tmp_path / "report.png")
    if os.environ.get("PPP_REPORT_SCREENSHOT"):          # to look at it
        shutil.copy(shot, os.environ["PPP_REPORT_SCREENSHOT"])
    assert shot.stat().st_size > 50_000
