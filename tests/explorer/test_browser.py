"""The explorer page in headless Chromium (Debian's, driven by Playwright; no browser download)."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

from tests.conftest import ROOT
from tests.explorer.conftest import ADMIN_KEY, API_KEY, PYTHON_FILE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """The page with the API key typed in (kept in localStorage, as a user's would be); fails on JS errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/explore")
    page.fill("#apikey", API_KEY)
    page.dispatch_event("#apikey", "change")
    page.wait_for_selector("#view[data-key='served|0|h|0']", timeout=60_000)  # first render with the key
    yield page
    context.close()
    assert not errors, errors


def api(server: str, path: str, body: dict) -> dict:
    r = httpx.post(f"{server}{path}", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def expected_rgb(v: float, scale: float) -> str:
    """The documented colour scale: dark red (-1) -> white (0) -> dark blue (+1)."""
    t = max(-1.0, min(1.0, v / scale))
    target = (139, 0, 0) if t < 0 else (0, 0, 139)
    r, g, b = (int(255 + (c - 255) * abs(t) + 0.5) if 255 + (c - 255) * abs(t) >= 0 else 0 for c in target)
    return f"rgb({r}, {g}, {b})"


def shown(page) -> list[dict]:
    """Every character span of the view: byte index, value attribute, computed background, text."""
    return page.eval_on_selector_all(
        "#view .ch", "els => els.map(e => ({i: +e.dataset.i, v: e.dataset.v, bg: getComputedStyle(e).backgroundColor,"
        " text: e.textContent, title: e.title}))")


def select_neuron(page, layer: int, quantity: str, neuron: int) -> None:
    page.select_option("#layer", str(layer))
    page.select_option("#quantity", quantity)
    page.fill("#neuron", str(neuron))
    page.dispatch_event("#neuron", "change")
    page.wait_for_selector(f"#view[data-key='served|{layer}|{quantity}|{neuron}']", timeout=60_000)
    page.wait_for_function("document.body.dataset.busy === '0'", timeout=60_000)


def test_characters_are_coloured_by_the_apis_values(page, server):
    code = "def área(r):\n\treturn [r, 'x']  # ok\n"
    page.fill("#text", "")
    page.click("#text")
    page.keyboard.type(code)
    page.click("#run")
    select_neuron(page, 1, "h", 250)
    expected = api(server, "/v1/activations", {"text": code, "layer": 1, "neurons": [250]})["values"]
    data = code.encode()
    spans = shown(page)
    assert len(spans) == len(code)  # one span per character, multi-byte ones included
    assert [s["i"] for s in spans] == [len(code[:k + 1].encode()) - 1 for k in range(len(code))]  # last byte
    assert spans[4]["text"] == "á" and spans[4]["i"] == 5 and spans[5]["i"] == 6  # á is bytes 4 and 5
    assert "".join(s["text"] for s in spans).replace("↵", "\n") == code
    for s in spans:  # h: the ±1 scale
        v = expected["h"][0][s["i"]]
        assert float(s["v"]) == v and s["bg"] == expected_rgb(v, 1.0), s
        assert float(s["title"].split(" = ")[1].split()[0]) == v  # hover shows the value
    assert len({s["bg"] for s in spans}) > 5  # really coloured, not one flat colour
    assert page.eval_on_selector_all("#grid .cell", "els => els.length") == 32  # overview: neurons 224-255
    assert page.get_attribute("#grid .cell.selected", "data-neuron") == "250"

    select_neuron(page, 1, "c", 250)  # the cell state: scaled by its largest |value| when that exceeds 1
    c = expected["c"][0]
    scale = max(1.0, max(abs(v) for v in c))
    assert float(page.get_attribute("#view", "data-scale")) == pytest.approx(scale)
    for s in shown(page):
        assert float(s["v"]) == c[s["i"]] and s["bg"] == expected_rgb(c[s["i"]], scale), s
    assert spans[-1]["i"] == len(data) - 1


def test_find_neurons_on_the_default_model(page, server):
    """Find neurons on a Python file: the indentation-depth feature has a neuron with |r| >= 0.5; one click
    shows it. Leaves test-artifacts/explorer.png."""
    page.fill("#text", PYTHON_FILE.read_text())
    page.click("#find")
    row = page.wait_for_selector("#neurons-table tr[data-feature='indent_depth']", timeout=120_000)
    r = float(row.get_attribute("data-r"))
    layer, quantity, neuron = (row.get_attribute(f"data-{k}") for k in ("layer", "quantity", "neuron"))
    assert abs(r) >= 0.5, (layer, quantity, neuron, r)
    rows = page.eval_on_selector_all("#neurons-table tbody tr", "els => els.map(e => e.dataset.feature)")
    assert rows == ["indent_depth", "bracket_depth", "in_string", "in_comment", "column", "to_identifier_end"]
    row.query_selector("button.view-neuron").click()
    page.wait_for_selector(f"#view[data-key='served|{layer}|{quantity}|{neuron}']", timeout=60_000)
    page.wait_for_function("document.body.dataset.busy === '0'", timeout=60_000)
    spans = shown(page)
    expected = api(server, "/v1/activations", {"text": PYTHON_FILE.read_text(), "layer": int(layer),
                                                "neurons": [int(neuron)], "quantities": [quantity]})
    assert [float(s["v"]) for s in spans] == [expected["values"][quantity][0][s["i"]] for s in spans]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer.png"), full_page=True)
    assert (ARTIFACTS / "explorer.png").stat().st_size > 10_000


def test_counting_model_on_the_page(page, counting):
    """The page, pointed at the counting experiment, finds its counting cell (|r| >= 0.8)."""
    page.reload()
    page.wait_for_selector("#view[data-key='served|0|h|0']", timeout=60_000)
    page.select_option("#model", "task:counting")
    page.wait_for_selector("#view[data-key='task:counting|0|h|0']", timeout=60_000)
    assert "aX" in page.input_value("#text") and "␀" in page.input_value("#text")  # the task's sample
    page.click("#find")
    row = page.wait_for_selector("#neurons-table tr[data-feature='a_minus_b']", timeout=60_000)
    assert row.get_attribute("data-quantity") == "c" and abs(float(row.get_attribute("data-r"))) >= 0.8
    row.query_selector("button.view-neuron").click()
    page.wait_for_selector(f"#view[data-key='task:counting|0|c|{row.get_attribute('data-neuron')}']",
                           timeout=60_000)
    assert page.eval_on_selector_all("#grid .cell", "els => els.length") == 10  # "all 10 neurons"
    page.screenshot(path=str(ARTIFACTS / "explorer-counting.png"), full_page=True)


def test_train_a_task_from_the_page(page):
    page.fill("#apikey", ADMIN_KEY)  # training burns CPU on demand: it takes the admin key once keys are set
    page.dispatch_event("#apikey", "change")
    page.select_option("#model", "task:state")
    page.click("#train")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('task state: trained')",
                           timeout=120_000)
    page.wait_for_selector("#view[data-key='task:state|0|h|0']", timeout=60_000)
    assert "exact" in page.text_content("#status")
    assert "not trained" not in page.text_content("#model option[value='task:state']")
