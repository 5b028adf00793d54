"""The stepping page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver`` packages, which .ci/run installs) steered by selenium (the ``browser``
extra). Nothing is downloaded at test time: the browser and its driver must be on the
machine, else these tests skip and say which is missing.

What a learner does: open the file, press "next" and the arrow keys, drag the slider, click a
box, flip the comparison colouring; and what they must see: the right box outlined, the rule
the picture prints, the numbers that ``J.backward()`` gives.
"""
from __future__ import annotations

import os
import shutil
import struct
import tempfile

import numpy as np
import pytest

from autograd_lite import reference as ref
from autograd_lite.viz import draw

from test_viz import seed_network, seed_report

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed: pip install -e '.[browser]'")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)
# Flags that work in a container as root, with no network and no desktop.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,900")


def _find(names, where):
    for name in names:
        path = shutil.which(name) or (os.path.exists(f"/usr/lib/chromium/{name}")
                                      and f"/usr/lib/chromium/{name}")
        if path:
            return path
    pytest.skip(f"no {where} installed ({' or '.join(names)} not found): "
                f"`apt-get install chromium chromium-driver`, as .ci/run does")


@pytest.fixture(scope="module")
def browser():
    binary = _find(BROWSERS, "browser")
    driver_path = _find(DRIVERS, "browser driver")
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="autograd-lite-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = binary
    # an explicit driver path: selenium never tries to fetch one
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def seed_page(tmp_path_factory):
    """The seed's page, and the gradients backward() gives (every Z[l], A[l] kept)."""
    net = seed_network(m=5)
    path = draw(net["J"]).save(tmp_path_factory.mktemp("page") / "backprop.html")
    for name in ("Z1", "A1", "Z2", "A2"):
        net[name].retain_grad()
    net["J"].backward(retain_graph=True)
    return path, net


def open_page(browser, path):
    browser.get(path.as_uri())
    return browser.find_element(By.CSS_SELECTOR, ".ag-page")


def state(page):
    return {key: page.get_attribute(f"data-{key}") for key in ("step", "current", "view")}


def step_title(browser):
    return browser.find_element(By.CSS_SELECTOR, ".ag-step .ag-step-title").text


def rule(browser):
    return browser.find_element(By.CSS_SELECTOR, ".ag-step .ag-rule").text


def shown_array(container, label):
    """The numbers a learner reads in the array block called ``label``, as an array."""
    block = container.find_element(By.CSS_SELECTOR, f'.ag-array[data-label="{label}"]')
    rows = block.find_elements(By.CSS_SELECTOR, "tr")
    return np.array([[float(td.text) for td in row.find_elements(By.CSS_SELECTOR, "td")]
                     for row in rows])


def box_title(box):
    """The first line of a box in the SVG: its name (Graphviz writes one <text> per line)."""
    return box.find_element(By.CSS_SELECTOR, "text").text


def current_box_title(browser):
    return box_title(browser.find_element(By.CSS_SELECTOR,
                                          ".ag-view:not([hidden]) g.node.ag-current"))


def go_to(browser, page, title_part):
    """Press "next" until the step title holds ``title_part``."""
    button = browser.find_element(By.CSS_SELECTOR, ".ag-next")
    for _ in range(200):
        if title_part in step_title(browser):
            return
        assert button.is_enabled(), f"no step says {title_part!r}"
        button.click()
    raise AssertionError(f"no step says {title_part!r}")


def test_stepping_forward_highlights_each_operation_and_its_rule(browser, seed_page):
    path, _ = seed_page
    page = open_page(browser, path)
    assert state(page)["step"] == "0" and state(page)["view"] == "forward"
    assert "The leaves" in step_title(browser)
    next_button = browser.find_element(By.CSS_SELECTOR, ".ag-next")
    for _ in range(3):
        next_button.click()
    assert state(page)["step"] == "3"
    assert step_title(browser) == "Forward 3 of 15: A[1] = sigmoid(Z[1])"
    assert rule(browser) == "sigmoid · eqs 7, 34"
    assert current_box_title(browser) == "A[1]"
    # the operation and its input are outlined too, and the result is shown in full
    active = [box_title(el) for el in browser.find_elements(
        By.CSS_SELECTOR, ".ag-view:not([hidden]) g.node.ag-active")]
    assert set(active) == {"sigmoid", "Z[1]", "A[1]"}
    np.testing.assert_allclose(shown_array(browser, "A[1] (result)"), seed_page[1]["A1"].data,
                               rtol=1e-5, atol=1e-6)


def test_arrow_keys_and_slider_move_between_steps(browser, seed_page):
    path, _ = seed_page
    page = open_page(browser, path)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert state(page)["step"] == "2"
    assert "Z[1] = W[1]·X + b[1]" in step_title(browser)
    body.send_keys(Keys.ARROW_LEFT)
    assert state(page)["step"] == "1"
    slider = browser.find_element(By.CSS_SELECTOR, ".ag-slider")
    browser.execute_script("arguments[0].value = 17; arguments[0].dispatchEvent(new Event('input'))",
                           slider)
    assert state(page)["step"] == "17" and state(page)["view"] == "backward"
    assert browser.find_element(By.CSS_SELECTOR, ".ag-counter").text.startswith("step 18 of ")
    body.send_keys(Keys.HOME)
    assert state(page)["step"] == "0"
    assert not browser.find_element(By.CSS_SELECTOR, ".ag-prev").is_enabled()


def test_backward_steps_show_rule_incoming_gradient_and_result(browser, seed_page):
    path, net = seed_page
    open_page(browser, path)
    go_to(browser, None, "gives dW[1]")
    assert rule(browser) == "dW[1] = dZ[1]·Xᵀ\n(eqs 59, 79, 83)"
    assert current_box_title(browser) == "dW[1]"
    np.testing.assert_allclose(shown_array(browser, "dZ[1] (coming in)"), net["Z1"].grad,
                               rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(shown_array(browser, "dW[1]"), net["W1"].grad, rtol=1e-5, atol=1e-9)


def test_the_running_sum_where_two_contributions_meet(browser, seed_page):
    path, net = seed_page
    open_page(browser, path)
    go_to(browser, None, "dA[2] (contribution 1 of 2)")
    first = shown_array(browser, "running sum of dA[2] so far (1 of 2)")
    go_to(browser, None, "dA[2] (contribution 2 of 2)")
    np.testing.assert_allclose(shown_array(browser, "dA[2] so far (1 of 2)"), first)
    second = shown_array(browser, "contribution 2 of 2 to dA[2]")
    total = shown_array(browser, "dA[2] = sum of 2 contributions")
    np.testing.assert_allclose(total, first + second, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(total, net["A2"].grad, rtol=1e-5, atol=1e-9)


def test_at_the_end_dW1_shows_the_numbers_of_W1_grad(browser, seed_page):
    path, net = seed_page
    page = open_page(browser, path)
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.END)
    assert state(page)["step"] == str(int(browser.find_element(
        By.CSS_SELECTOR, ".ag-slider").get_attribute("max")))
    assert "Done" in step_title(browser)
    for label, key in (("dW[1]", "W1"), ("db[1]", "b1"), ("dW[2]", "W2"), ("db[2]", "b2")):
        np.testing.assert_allclose(shown_array(browser, label), net[key].grad, rtol=1e-5, atol=1e-9)
    assert not browser.find_element(By.CSS_SELECTOR, ".ag-next").is_enabled()


def test_clicking_a_box_shows_its_full_arrays(browser, tmp_path):
    """X is 3×20: more than the 16 numbers a picture prints, every one shown on the page."""
    net = seed_network(m=20)
    path = draw(net["J"]).save(tmp_path / "m20.html")
    net["J"].backward(retain_graph=True)
    open_page(browser, path)
    boxes = {box_title(el): el for el in browser.find_elements(
        By.CSS_SELECTOR, ".ag-view:not([hidden]) g.node")}
    boxes["X"].click()
    details = browser.find_element(By.CSS_SELECTOR, ".ag-details")
    assert details.find_element(By.CSS_SELECTOR, ".ag-step-title").text == "X · 3×m"
    np.testing.assert_allclose(shown_array(details, "X (value)"), net["X"].data, rtol=1e-5, atol=1e-9)
    assert shown_array(details, "X (value)").shape == (3, 20)
    boxes["W[1]"].click()
    assert details.find_element(By.CSS_SELECTOR, ".ag-step-title").text == "W[1] · 4×3"
    np.testing.assert_allclose(shown_array(details, "W[1] (value)"), net["W1"].data, rtol=1e-5)
    np.testing.assert_allclose(shown_array(details, "dW[1] (gradient)"), net["W1"].grad,
                               rtol=1e-5, atol=1e-9)


def test_comparison_colouring_toggles_and_marks_where_derivations_part(browser, tmp_path):
    net = seed_network()
    report = seed_report(net, ref.wrong_rules("g-prime-of-A", [2]))  # eq 78 wrong in layer 2
    path = draw(net["J"], compare=report).save(tmp_path / "wrong.html")
    page = open_page(browser, path)
    go_to(browser, page, "gives dZ[2]")
    assert state(page)["view"] == "backward-compare"
    line = browser.find_element(By.CSS_SELECTOR, ".ag-step .ag-compare-line")
    assert "first to differ" in line.text and "differ" in line.get_attribute("class")
    box = browser.find_element(By.CSS_SELECTOR, ".ag-view:not([hidden]) g.node.ag-current > path")
    assert box.get_attribute("fill") == "#fcae91"  # the comparison's red (model.FAIL_FILL)
    browser.find_element(By.CSS_SELECTOR, ".ag-compare").click()
    assert state(page)["view"] == "backward"
    assert not browser.find_elements(By.CSS_SELECTOR, ".ag-step .ag-compare-line")
    box = browser.find_element(By.CSS_SELECTOR, ".ag-view:not([hidden]) g.node.ag-current > path")
    assert box.get_attribute("fill") != "#fcae91"


def test_screenshot(browser, seed_page, tmp_path):
    path, _ = seed_page
    open_page(browser, path)
    go_to(browser, None, "gives dZ[1]")
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot))
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width >= 800 and height >= 500
    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
