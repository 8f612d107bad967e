"""The channel-graph page in a real browser (headless Chromium through Selenium).

Pages are made by ``ksm graph --format html`` for models/smart_lock_flawed (13
processes, a refuted flow property), and for generated solutions of 30 and 300
processes (ksm.flows.generate).  Everything is measured from the DOM the browser
laid out: box and label rectangles in viewport pixels, classes the script sets.
Skipped, with the reason, only where no browser can be started (see tools/browser.py).
"""
from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import pytest

from ksm.cli import main

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import browser  # noqa: E402
import graph_screenshots  # noqa: E402

pytestmark = pytest.mark.skipif(browser.why_not() is not None, reason=f"no headless browser: {browser.why_not()}")

SIZES = {"lock": 13, "smart": 13, "gen30": 30, "gen300": 300}


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("graph-pages")
    solutions = {"lock": REPO / "models" / "smart_lock_flawed", "smart": REPO / "models" / "smart_lock",
                 "gen30": graph_screenshots.generated(base / "gen30", 30),
                 "gen300": graph_screenshots.generated(base / "gen300", 300)}
    out = {}
    for name, root in solutions.items():
        page = base / f"{name}.html"
        assert main(["graph", str(root), "--format", "html", "--output", str(page)]) == 0
        out[name] = page
    return out


@pytest.fixture(scope="module")
def driver():
    d = browser.start(*graph_screenshots.WINDOW)
    yield d
    d.quit()


def _open(driver, page: Path, view: str | None = None) -> None:
    browser.open_page(driver, page)
    if view is not None:
        driver.execute_script("window.ksmGraph.showView(arguments[0])", view)


def _frame(driver) -> dict:
    """The visible part of the active view's frame: the frame clipped to the window."""
    f = browser.rects(driver, ".view.active .frame")[0]
    width, height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    bottom, right = min(f["y"] + f["h"], height), min(f["x"] + f["w"], width)
    return {"x": f["x"], "y": f["y"], "w": right - f["x"], "h": bottom - f["y"]}


def _inside(r: dict, frame: dict, slack: float = 1.0) -> bool:
    return (r["x"] >= frame["x"] - slack and r["y"] >= frame["y"] - slack
            and r["x"] + r["w"] <= frame["x"] + frame["w"] + slack
            and r["y"] + r["h"] <= frame["y"] + frame["h"] + slack)


@pytest.mark.parametrize("name, view", [("lock", "procs"), ("gen30", "procs"), ("gen300", "procs"),
                                        ("gen300", "classes")])
def test_after_fit_no_boxes_overlap_and_all_are_inside_the_frame(driver, pages, name, view):
    _open(driver, pages[name], view)
    boxes = browser.rects(driver, ".view.active .node rect")
    assert len(boxes) >= (SIZES[name] if view == "procs" else 3)
    frame = _frame(driver)
    assert all(_inside(b, frame) for b in boxes), "a box lies outside the frame after fit"
    clashes = [(a["id"], b["id"]) for a, b in combinations(boxes, 2) if browser.overlaps(a, b)]
    assert clashes == []


@pytest.mark.parametrize("name", ["lock", "gen30"])
def test_placed_labels_overlap_neither_each_other_nor_boxes(driver, pages, name):
    _open(driver, pages[name], "procs")
    labels = browser.rects(driver, ".view.active .edge text.lbl:not(.hover)")
    boxes = browser.rects(driver, ".view.active .node rect")
    assert labels, "no label was placed at all"
    assert [(a["id"], b["id"]) for a, b in combinations(labels, 2) if browser.overlaps(a, b, 1.0)] == []
    assert [(a["id"], b["id"]) for a in labels for b in boxes if browser.overlaps(a, b, 1.0)] == []


def test_a_large_solution_opens_on_a_summary(driver, pages):
    """Above 60 processes: the class graph, or the matrix when the class graph is dense."""
    from ksm.flows.page import DENSE_CLASSES

    _open(driver, pages["gen300"])
    arrows = driver.execute_script("return document.querySelectorAll('#view-classes .edge').length")
    boxes = driver.execute_script("return document.querySelectorAll('#view-classes .node').length")
    want = "classes" if arrows <= DENSE_CLASSES * boxes else "matrix"
    assert driver.execute_script("return document.documentElement.getAttribute('data-view')") == want
    _open(driver, pages["lock"])
    assert driver.execute_script("return document.documentElement.getAttribute('data-view')") == "procs"


def test_search_focuses_a_process_and_brings_it_into_view(driver, pages):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(driver, pages["gen300"])                       # opens on classes: search switches to processes
    box = driver.find_element(By.ID, "search")
    box.send_keys("t123", Keys.ENTER)
    state = driver.execute_script("""
        const n = document.querySelector('#view-procs .node.selected');
        return {name: n && n.getAttribute('data-name'), view: document.documentElement.getAttribute('data-view'),
                focusing: document.querySelector('#graph').classList.contains('focusing'),
                open: Array.from(document.querySelectorAll('.node-detail.open')).map(p => p.id)};""")
    assert state["name"] == "t123" and state["view"] == "procs" and state["focusing"]
    assert state["open"] and state["open"][0].startswith("detail-")
    node = browser.rects(driver, "#view-procs .node.selected rect")[0]
    assert _inside(node, _frame(driver))


def test_clicking_a_process_highlights_its_channels_and_neighbours(driver, pages):
    from selenium.webdriver.common.by import By

    _open(driver, pages["lock"], "procs")
    node = driver.find_element(By.CSS_SELECTOR, '#view-procs .node[data-name="lock.Parser"]')
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", node)
    got = driver.execute_script("""
        const n = document.querySelector('#view-procs .node[data-name="lock.Parser"]');
        const want = n.getAttribute('data-edges').split(' ');
        const focused = Array.from(document.querySelectorAll('#graph .edge.focus')).map(e => e.id);
        const near = Array.from(document.querySelectorAll('#graph .node.near')).map(e => e.getAttribute('data-name'));
        const panel = document.querySelector('.node-detail.open');
        return {want: want.sort(), focused: focused.sort(), near: near, panel: panel && panel.textContent,
                dim: getComputedStyle(document.querySelector('#graph .edge:not(.focus)')).opacity};""")
    assert got["focused"] == got["want"] and got["focused"]
    assert "lock.Controller" in got["near"]
    assert "Channels" in got["panel"] and "granted requests" in got["panel"]
    assert float(got["dim"]) < 0.5


@pytest.mark.parametrize("status", ["denied", "granted", "kernel"])
def test_filters_hide_and_show_arrows(driver, pages, status):
    from selenium.webdriver.common.by import By

    _open(driver, pages["gen30"], "procs")
    shown = f"#graph .edge.{status}:not(.forbidden)"
    assert browser.rects(driver, shown), f"no {status} arrow to filter"
    box = driver.find_element(By.CSS_SELECTOR, f'#filters input[data-hide="{status}"]')
    box.click()
    assert browser.rects(driver, shown) == []
    box.click()
    assert browser.rects(driver, shown)


def test_a_refuted_flow_shows_its_witness_path(driver, pages):
    from selenium.webdriver.common.by import By

    _open(driver, pages["lock"], "procs")
    row = driver.find_element(By.CSS_SELECTOR, "tr.flow.refuted")
    ids = row.get_attribute("data-edges").split()
    assert ids
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", row)
    focused = driver.execute_script("return Array.from(document.querySelectorAll('#graph .edge.focus')).map(e => e.id)")
    assert sorted(focused) == sorted(ids)
    assert all("forbidden" in driver.find_element(By.ID, i).get_attribute("class") for i in ids)
    frame = _frame(driver)
    assert all(_inside(r, frame, 4) for r in browser.rects(driver, "#graph .edge.focus polyline"))


def test_zoom_buttons_and_fit(driver, pages):
    from selenium.webdriver.common.by import By

    _open(driver, pages["gen30"], "procs")
    scale = lambda: float(driver.find_element(By.CSS_SELECTOR, "#view-procs .frame").get_attribute("data-scale"))  # noqa: E731
    fitted = scale()
    driver.find_element(By.ID, "zoom-in").click()
    assert scale() > fitted
    driver.find_element(By.ID, "fit").click()
    assert scale() == pytest.approx(fitted)


def test_the_matrix_gives_the_granted_methods_of_a_cell(driver, pages):
    from selenium.webdriver.common.by import By

    _open(driver, pages["gen300"], "matrix")
    cell = driver.find_element(By.CSS_SELECTOR, "#matrix td.granted")
    cell.click()
    assert "granted requests: api." in driver.find_element(By.ID, "cell-detail").text


def test_the_page_works_without_errors_in_the_console(driver, pages):
    for page in pages.values():
        _open(driver, page)
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert errors == []


def test_the_docs_screenshot_of_the_smart_lock_is_current(driver, tmp_path):
    """docs/img/graph-smart_lock.png is what the page shows now, loosely: the same size,
    and thumbnails that differ little (fonts and anti-aliasing may)."""
    from PIL import Image, ImageChops, ImageStat

    fresh = graph_screenshots.shoot_lock(driver, tmp_path, tmp_path / "lock.png")
    kept = REPO / "docs" / "img" / "graph-smart_lock.png"
    assert kept.is_file(), "take the screenshots with: python tools/graph_screenshots.py"
    a, b = Image.open(kept).convert("L"), Image.open(fresh).convert("L")
    assert a.size == b.size, "regenerate with: python tools/graph_screenshots.py"
    thumb = (max(1, a.size[0] // 8), max(1, a.size[1] // 8))
    diff = ImageStat.Stat(ImageChops.difference(a.resize(thumb), b.resize(thumb))).mean[0]
    assert diff < 8, f"the page no longer looks like docs/img/graph-smart_lock.png (mean difference {diff:.1f}); " \
                     "regenerate with: python tools/graph_screenshots.py"


def test_a_proved_flow_shows_its_cut(driver, pages):
    """A proved `never flow` row highlights its certificate: the channels whose hops cut every path."""
    from selenium.webdriver.common.by import By

    _open(driver, pages["smart"], "procs")
    rows = [r for r in driver.find_elements(By.CSS_SELECTOR, "tr.flow.proved") if r.get_attribute("data-edges")]
    assert rows, "smart_lock has no proved flow property with a cut"
    ids = rows[0].get_attribute("data-edges").split()
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", rows[0])
    focused = driver.execute_script("return Array.from(document.querySelectorAll('#graph .edge.focus')).map(e => e.id)")
    assert sorted(focused) == sorted(ids)
    assert driver.execute_script("return document.querySelector('tr.flow.proved.selected') !== null")
