"""The dashboard in a real headless browser against a store seeded by a small real loop.

Each page is loaded, the candidates table is filtered, sorted and exported, a candidate's structure viewer must
draw, plots must hold data points; an empty store, a store that is down and an unknown id each give a message in
the page. Screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.slow
CAMPAIGN = "dash"  # the campaign of the seeded_store fixture
WAIT_S = 60


def wait(driver: Any, condition: Callable[[Any], Any], timeout: float = WAIT_S) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def page_text(driver: Any) -> str:
    return driver.find_element(By.ID, "page").text


def column(driver: Any, name: str, table: str = "cand-table") -> list[str]:
    """The texts of one column of a DataTable, read in one script (the table re-renders as data arrives)."""
    selector = f"#{table} td[data-dash-column='{name}']"
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText.trim());", selector
    )


def plot_points(driver: Any, graph_id: str) -> list[int]:
    """Non-null y values per trace of a dcc.Graph."""
    script = (
        f"const g = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return g && g.data ? g.data.map(t => (t.y || []).filter(v => v !== null).length) : null;"
    )
    return driver.execute_script(script) or []


@pytest.fixture(scope="module")
def site(seeded_store: str, serve: Callable[..., str]) -> str:
    return serve(database=seeded_store)


def test_campaigns_page_lists_the_campaign(browser: Any, screenshot: Any, site: str) -> None:
    browser.get(site + "/")
    wait(browser, lambda d: CAMPAIGN in page_text(d) and "completed" in page_text(d))
    text = page_text(browser)
    assert "idle" in text and "Traceback" not in browser.page_source
    screenshot(browser, "campaigns")


def test_candidates_table_filters_sorts_and_exports(browser: Any, screenshot: Any, site: str, downloads: Path) -> None:
    browser.get(f"{site}/candidates?campaign={CAMPAIGN}")
    wait(browser, lambda d: len(column(d, "id")) > 0)
    wait(browser, lambda d: "match" in d.find_element(By.ID, "cand-count").text)
    total = int(browser.find_element(By.ID, "cand-count").text.split()[0].replace(",", ""))
    assert total == len(column(browser, "id")) > 3  # one page holds them all
    screenshot(browser, "candidates")

    # sort by sites: ascending numbers
    sort = "#cand-table th[data-dash-column='n_sites'] .column-header--sort"
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, sort)).click()
    wait(browser, lambda d: [int(x) for x in column(d, "n_sites")] == sorted(int(x) for x in column(d, "n_sites")))
    sites = [int(x) for x in column(browser, "n_sites")]
    assert len(set(sites)) > 1

    # filter: the predicted band gap column (an expression, applied on Enter)
    gaps = sorted(float(x) for x in column(browser, "pred_band_gap") if x)
    cut = gaps[len(gaps) // 2]
    box = browser.find_element(By.ID, "f-where")
    box.send_keys(f"pred_band_gap >= {cut}", Keys.ENTER)
    wait(browser, lambda d: 0 < len(column(d, "id")) < total)
    wait(browser, lambda d: all(float(x) >= cut for x in column(d, "pred_band_gap")))
    shown = len(column(browser, "id"))
    wait(browser, lambda d: d.find_element(By.ID, "cand-count").text.startswith(f"{shown} "))
    screenshot(browser, "candidates-filtered")

    # export the filtered set as CSV
    for old in downloads.glob("candidates*.csv"):
        old.unlink()
    browser.find_element(By.ID, "export-csv").click()
    path = downloads / "candidates.csv"
    deadline = time.monotonic() + 30
    while not (path.exists() and path.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.2)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == shown and all(float(r["pred_band_gap"]) >= cut for r in rows)
    assert {"id", "formula", "e_above_hull", "pred_e_above_hull_std"} <= set(rows[0])

    # a malformed expression is a message, not a stack trace
    box = browser.find_element(By.ID, "f-where")
    box.clear()
    box.send_keys("pred_band_gap >= banana", Keys.ENTER)
    wait(browser, lambda d: "Cannot show the candidates" in d.find_element(By.ID, "cand-message").text)
    assert "Traceback" not in browser.page_source


def _evaluated_id(browser: Any, site: str) -> str:
    browser.get(f"{site}/candidates?campaign={CAMPAIGN}&status=evaluated&where=e_above_hull%20%3C%3D%205")
    wait(browser, lambda d: len(column(d, "id")) > 0)
    return column(browser, "id")[0]


def test_candidate_page_draws_its_structure(browser: Any, screenshot: Any, site: str) -> None:
    cid = _evaluated_id(browser, site)
    browser.find_element(By.CSS_SELECTOR, "#cand-table td[data-dash-column='formula'] a").click()
    wait(browser, lambda d: d.current_url.endswith("/candidate/" + cid))
    # the viewer is crystal-toolkit's, framed from /viewer/ (its 6 MB of JavaScript load there only)
    browser.switch_to.frame(wait(browser, lambda d: d.find_element(By.ID, "structure-viewer")))
    try:
        canvas = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "canvas"))[0]
        wait(browser, lambda d: canvas.size["width"] > 100 and canvas.size["height"] > 100)

        def drawn(_: Any) -> bool:  # a blank canvas is one colour; atoms and the cell add many
            from PIL import Image

            image = Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB")
            return len(set(image.getdata())) > 20

        wait(browser, drawn, timeout=30)
    finally:
        browser.switch_to.default_content()
    text = page_text(browser)
    for part in (
        "Lattice and symmetry",
        "space group",
        "Predicted vs oracle",
        "Provenance",
        "energy above hull",
        "flow run",
    ):
        assert part in text
    assert sum(plot_points(browser, "energy-curve")) >= 1  # the relaxation's energies
    wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#phase-diagram .js-plotly-plot, #phase-diagram .notification"),
    )
    screenshot(browser, "candidate")


def test_rounds_page_plots_and_selection(browser: Any, screenshot: Any, site: str) -> None:
    browser.get(f"{site}/rounds?campaign={CAMPAIGN}")
    wait(browser, lambda d: sum(plot_points(d, "g-best")) >= 2)
    assert sum(plot_points(browser, "g-hits")) >= 2
    wait(browser, lambda d: sum(plot_points(d, "g-scatter")) >= 2)
    # a box drawn over the whole scatter selects every point and lists them in the table below
    from selenium.webdriver.common.action_chains import ActionChains

    area = browser.find_element(By.CSS_SELECTOR, "#g-scatter .nsewdrag")
    w, h = area.size["width"], area.size["height"]
    ActionChains(browser).move_to_element_with_offset(area, -w // 2 + 2, -h // 2 + 2).click_and_hold().move_by_offset(
        w - 4, h - 4
    ).release().perform()
    wait(browser, lambda d: column(d, "id", table="selected-table"))
    screenshot(browser, "rounds")


def test_models_page_lists_models_with_parity(browser: Any, screenshot: Any, site: str) -> None:
    browser.get(site + "/models")
    wait(browser, lambda d: column(d, "id", table="models-table"))
    ids = column(browser, "id", table="models-table")
    assert f"{CAMPAIGN}-r0" in ids
    row = ids.index(f"{CAMPAIGN}-r0")
    browser.find_elements(By.CSS_SELECTOR, "#models-table input[type='radio']")[row].click()
    wait(browser, lambda d: sum(plot_points(d, "parity-graph")) >= 1)
    screenshot(browser, "models")


def test_unknown_candidate_is_a_message(browser: Any, screenshot: Any, site: str) -> None:
    browser.get(site + "/candidate/no-such-id")
    wait(browser, lambda d: "No candidate with id 'no-such-id'" in page_text(d))
    assert "Traceback" not in browser.page_source
    screenshot(browser, "unknown-candidate")


def test_empty_store_is_a_message(browser: Any, screenshot: Any, serve: Callable[..., str]) -> None:
    url = serve(database="dash_empty")
    browser.get(url + "/")
    wait(browser, lambda d: "The store is empty" in page_text(d))
    browser.get(url + "/candidates")
    wait(browser, lambda d: "No candidates in the store yet" in d.find_element(By.ID, "cand-message").text)
    screenshot(browser, "empty-store")


def test_store_down_is_a_message(browser: Any, screenshot: Any, serve: Callable[..., str], closed_port: int) -> None:
    url = serve(database="dash_down", store_uri=f"mongodb://127.0.0.1:{closed_port}")
    for path in ("/", "/candidates", "/rounds", "/models", "/candidate/x"):
        browser.get(url + path)
        wait(browser, lambda d: "not reachable" in d.find_element(By.TAG_NAME, "body").text)
        assert "Traceback" not in browser.page_source
    screenshot(browser, "store-down")
