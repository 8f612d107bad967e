"""Screenshots of the channel-graph page for docs/flows.md, taken in headless Chromium.

Run: python tools/graph_screenshots.py [OUT_DIR]   (default docs/img)

Three solutions: models/smart_lock_flawed (13 processes) with its refuted flow
property selected, so the witness path stands out; generated solutions of 30 and 300
processes (``ksm.flows.generate``, fixed seed), the latter in its class, process and
matrix views.  tests/test_graph_browser.py takes the first again and
compares it, loosely, with the one in docs/img.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

import browser  # noqa: E402

WINDOW = (1400, 1000)


def generated(root: Path, processes: int) -> Path:
    """A generated solution of ``processes`` processes (four channels each), with its properties."""
    from ksm.flows.generate import generate_flow_solution

    props = generate_flow_solution(root, instances=processes, channels_per_instance=4,
                                   classes_per_zone=max(3, processes // 25))
    (root / "einit" / "src" / "flows.props").write_text(props)
    return root


def page_of(root: Path, out: Path) -> Path:
    from ksm.cli import main

    if main(["graph", str(root), "--format", "html", "--output", str(out)]) != 0:
        raise SystemExit(f"ksm graph {root} failed")
    return out


def shoot_lock(driver, work: Path, out: Path) -> Path:
    """smart_lock_flawed, process view, the refuted flow's witness path selected."""
    from selenium.webdriver.common.by import By

    browser.open_page(driver, page_of(REPO / "models" / "smart_lock_flawed", work / "lock.html"))
    row = driver.find_element(By.CSS_SELECTOR, "tr.flow.refuted")
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", row)
    driver.execute_script("window.ksmGraph.frames.procs.fit()")
    browser.screenshot(driver, out, "#view-procs .frame")
    return out


def shoot_all(out_dir: Path) -> list[Path]:
    reason = browser.why_not()
    if reason is not None:
        raise SystemExit(f"no headless browser: {reason}")
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory(prefix="ksm-shots-") as tmp:
        work = Path(tmp)
        driver = browser.start(*WINDOW)
        try:
            made.append(shoot_lock(driver, work, out_dir / "graph-smart_lock.png"))
            browser.open_page(driver, page_of(generated(work / "gen30", 30), work / "gen30.html"))
            made.append(out_dir / "graph-30.png")
            browser.screenshot(driver, made[-1], "#view-procs .frame")
            browser.open_page(driver, page_of(generated(work / "gen300", 300), work / "gen300.html"))
            driver.execute_script("window.ksmGraph.showView('classes')")
            made.append(out_dir / "graph-300-classes.png")
            browser.screenshot(driver, made[-1], "#view-classes .frame")
            driver.execute_script("window.ksmGraph.showView('procs')")
            made.append(out_dir / "graph-300.png")
            browser.screenshot(driver, made[-1], "#view-procs .frame")
            driver.execute_script("window.ksmGraph.showView('matrix')")
            made.append(out_dir / "graph-300-matrix.png")
            browser.screenshot(driver, made[-1], "#matrix")
        finally:
            driver.quit()
    return made


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "img"
    for path in shoot_all(target):
        print(path)
