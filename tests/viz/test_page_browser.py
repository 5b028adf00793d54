"""The stepping page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver`` packages, which .ci/run installs) steered by selenium (the ``browser``
extra). Nothing is downloaded at test time: the browser and its driver must be on the
machine, else these tests skip and say which is missing.

What a learner does: open the file, press "next" and the arrow keys, drag the slider, click a
box, flip the comparison colouring; and what they must see: the right box outlined, the rule
the picture prints, the numbers that ``J.backward()`` gives.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile

import numpy as np
import pytest

import autograd_lite as ag
from autograd_lite import reference as ref
from autograd_lite.viz import draw

from test_viz import seed_network, seed_report

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed: pip install -e '.[browser]'")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
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
    # a wide array wraps: its columns come in several tables, one under the other
    return np.hstack([np.array([[float(td.text) for td in row.find_elements(By.CSS_SELECTOR, "td")]
                                for row in table.find_elements(By.CSS_SELECTOR, "tr")])
                      for table in block.find_elements(By.CSS_SELECTOR, "table")])


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
    assert rule(browser) == "dW[1] = dZ[1]·Xᵀ\n(eq 83)"
    assert current_box_title(browser) == "dW[1]"
    np.testing.assert_allclose(shown_array(browser, "dZ[1] (coming in)"), net["Z1"].grad,
                               rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(shown_array(browser, "= dW[1]"), net["W1"].grad, rtol=1e-5, atol=1e-9)


def test_the_running_sum_where_two_contributions_meet(browser, seed_page):
    path, net = seed_page
    open_page(browser, path)
    go_to(browser, None, "dA[2] (contribution 1 of 2)")
    first = shown_array(browser, "running sum of dA[2] so far (1 of 2)")
    go_to(browser, None, "dA[2] (contribution 2 of 2)")
    np.testing.assert_allclose(shown_array(browser, "dA[2] so far (1 of 2)"), first)
    second = shown_array(browser, "= contribution 2 of 2 to dA[2]")
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
    # on the first step backward has computed nothing yet: no dW[1] is shown, and it says when
    assert not details.find_elements(By.CSS_SELECTOR, '.ag-array[data-label="dW[1] (gradient)"]')
    assert "dW[1]: not computed yet" in details.text
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.END)  # stays pinned while stepping
    details = browser.find_element(By.CSS_SELECTOR, ".ag-details")
    np.testing.assert_allclose(shown_array(details, "dW[1] (gradient)"), net["W1"].grad,
                               rtol=1e-5, atol=1e-9)
    details.find_element(By.CSS_SELECTOR, ".ag-close").click()
    assert not browser.find_element(By.CSS_SELECTOR, ".ag-details").is_displayed()


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


# --- the seed's story, step by step, as a student checks it -------------------------------------

# The seed's equation for each gradient, by quantity and layer (docs/seed/EQUATIONS.md):
# eqs 77-80 for the output layer N and 81-84 for a hidden layer with m samples; the one-sample
# summaries, eqs 66-69 and 70-73, when the page has m = 1.
SEED_EQUATIONS = {
    ("dA", "output"): 77, ("dZ", "output"): 78, ("dW", "output"): 79, ("db", "output"): 80,
    ("dA", "hidden"): 81, ("dZ", "hidden"): 82, ("dW", "hidden"): 83, ("db", "hidden"): 84,
}
ONE_SAMPLE_EQUATIONS = {
    ("dA", "output"): 66, ("dZ", "output"): 67, ("dW", "output"): 68, ("db", "output"): 69,
    ("dA", "hidden"): 70, ("dZ", "hidden"): 71, ("dW", "hidden"): 72, ("db", "hidden"): 73,
}
SIZES = {"1024x700": (1024, 700), "1400x1000": (1400, 1000)}


def readme_network(layers=(3, 4, 1), m=5, seed=0):
    """The README's network: only W[l] and b[l] named, eq 1 with log, J a mean (eq 76)."""
    rng = np.random.default_rng(seed)
    X = ag.Tensor(rng.standard_normal((layers[0], m)))
    Y = ag.Tensor((rng.random((layers[-1], m)) > 0.5) * 1.0)
    A = X
    for l in range(1, len(layers)):
        W = ag.Tensor(rng.standard_normal((layers[l], layers[l - 1])) * 0.5, requires_grad=True,
                      name=f"W[{l}]")
        b = ag.Tensor(rng.standard_normal((layers[l], 1)) * 0.1, requires_grad=True, name=f"b[{l}]")
        A = (W @ A + b).sigmoid()
    return -(Y * A.log() + (1 - Y) * (1 - A).log()).mean()


def window(browser, size):
    width, height = SIZES[size]
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


@pytest.fixture
def sized(browser):
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def array_in(block):
    """The full-precision array a block holds (its data-array attribute)."""
    entry = json.loads(block.get_attribute("data-array"))
    return np.array([float(x) for x in entry["data"]]).reshape(entry["shape"])


def block(browser, role):
    found = browser.find_elements(By.CSS_SELECTOR, f'.ag-step .ag-array[data-role~="{role}"]')
    return found[0] if found else None


def backward_panels(browser):
    """Step through the whole backward pass; yield once per backward step, on that step."""
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.HOME)
    while True:
        if step_title(browser).startswith("Backward ") and " of " in step_title(browser):
            yield browser.find_element(By.CSS_SELECTOR, ".ag-step")
        if not browser.find_element(By.CSS_SELECTOR, ".ag-next").is_enabled():
            return
        body.send_keys(Keys.ARROW_RIGHT)


@pytest.mark.parametrize("layers", [(3, 4, 1), (3, 4, 3, 1)], ids=["2 layers", "3 layers"])
@pytest.mark.parametrize("m", [5, 1], ids=["m=5", "m=1"])
def test_every_backward_step_cites_the_seeds_equation_for_its_quantity_and_layer(
        browser, tmp_path, layers, m):
    N = len(layers) - 1
    J = readme_network(layers, m)
    path = draw(J).save(tmp_path / "seed.html")
    open_page(browser, path)
    table = SEED_EQUATIONS if m > 1 else ONE_SAMPLE_EQUATIONS
    seen = set()
    for panel in backward_panels(browser):
        quantity = panel.get_attribute("data-quantity")
        match = re.fullmatch(r"(dA|dZ|dW|db)\[(\d)\]", quantity)
        if match is None:
            assert panel.get_attribute("data-equation") == "", quantity  # not one of the seed's
            continue
        layer = int(match.group(2))
        expected = table[match.group(1), "output" if layer == N else "hidden"]
        assert panel.get_attribute("data-equation") == str(expected), quantity
        shown = panel.find_element(By.CSS_SELECTOR, ".ag-equation").text
        assert shown.startswith(f"eq {expected} ") and f"layer {layer}" in shown, (quantity, shown)
        seen.add(quantity)
    assert seen == {f"d{q}[{l}]" for q in "AZWb" for l in range(1, N + 1)}


@pytest.mark.parametrize("layers", [(3, 4, 1), (3, 4, 3, 1)], ids=["2 layers", "3 layers"])
def test_the_shown_factors_multiply_out_to_the_shown_result(browser, tmp_path, layers):
    """Incoming gradient times local factor (elementwise, or a matrix product on either side)
    is the product shown, and where the step sums over the samples (eq 80/84), that sum is the
    result shown: to 1e-12, from the numbers in the page itself."""
    J = readme_network(layers)
    path = draw(J).save(tmp_path / "seed.html")
    open_page(browser, path)
    checked = set()
    for panel in backward_panels(browser):
        factor = block(browser, "factor")
        assert factor is not None, step_title(browser)  # the seed's network: every step is one product
        g, F = array_in(block(browser, "incoming")), array_in(factor)
        form = factor.get_attribute("data-form")
        product = array_in(block(browser, "product"))
        expected = {"g∘F": lambda: g * F, "g·F": lambda: g @ F, "F·g": lambda: F @ g}[form]()
        np.testing.assert_allclose(np.broadcast_to(expected, product.shape), product,
                                   rtol=1e-12, atol=1e-12 * np.abs(product).max())
        summed = block(browser, "summed")
        if summed is not None:
            axes = tuple(json.loads(summed.get_attribute("data-axes")))
            total = array_in(summed)
            np.testing.assert_allclose(product.sum(axis=axes).reshape(total.shape), total,
                                       rtol=1e-12, atol=1e-12 * np.abs(total).max())
            checked.add("sum")
        checked.add(form)
    assert checked == {"g∘F", "g·F", "F·g", "sum"}


def test_dZ_N_shows_the_seeds_simplification_beside_autodiff(browser, tmp_path):
    J = readme_network()
    path = draw(J).save(tmp_path / "seed.html")
    open_page(browser, path)
    go_to(browser, None, "gives dZ[2]")
    text = browser.find_element(By.CSS_SELECTOR, ".ag-step .ag-simplified").text
    assert "dZ[2] = A[2] − Y" in text and "divided by m = 5" in text
    simplified = array_in(block(browser, "simplified"))
    autodiff = array_in(block(browser, "autodiff"))
    np.testing.assert_allclose(simplified, autodiff, rtol=1e-12, atol=1e-15)
    assert simplified.shape == (1, 5)


@pytest.mark.parametrize("size", SIZES)
def test_a_clicked_box_is_described_inside_the_window(sized, tmp_path, size):
    browser = sized
    window(browser, size)
    J = readme_network()
    path = draw(J).save(tmp_path / "seed.html")
    open_page(browser, path)
    browser.find_element(By.CSS_SELECTOR, ".ag-next").click()  # step 1 of the forward pass
    box = next(el for el in browser.find_elements(By.CSS_SELECTOR, ".ag-view:not([hidden]) g.node")
               if box_title(el) == "W[1]")
    box.click()
    details = browser.find_element(By.CSS_SELECTOR, ".ag-details")
    top, bottom, height = browser.execute_script(
        "var r = arguments[0].getBoundingClientRect(); return [r.top, r.bottom, window.innerHeight]",
        details.find_element(By.CSS_SELECTOR, '.ag-array[data-label="W[1] (value)"]'))
    assert 0 <= top and bottom <= height, (top, bottom, height)
    assert "dW[1]: not computed yet" in details.text
    # every array on the panel fits its width: nothing is cut at the right edge
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    for scroll in browser.find_elements(By.CSS_SELECTOR, ".ag-panel .ag-array-scroll"):
        wide, room = browser.execute_script(
            "return [arguments[0].scrollWidth, arguments[0].clientWidth]", scroll)
        assert wide <= room, (size, wide, room)


def test_hovering_does_not_take_the_panel_over_while_stepping_with_the_keys(browser, tmp_path):
    J = readme_network()
    path = draw(J).save(tmp_path / "seed.html")
    open_page(browser, path)
    box = next(el for el in browser.find_elements(By.CSS_SELECTOR, ".ag-view:not([hidden]) g.node")
               if box_title(el) == "W[1]")
    ActionChains(browser).move_to_element(box).perform()
    details = browser.find_element(By.CSS_SELECTOR, ".ag-details")
    assert details.is_displayed() and "W[1]" in details.text  # a preview while nothing is pinned
    body = browser.find_element(By.TAG_NAME, "body")
    for _ in range(4):
        body.send_keys(Keys.ARROW_RIGHT)
        assert not details.is_displayed()  # the keys step; the box under the pointer waits


def test_any_name_is_drawn_as_given_and_the_page_still_runs(browser, tmp_path):
    names = ["<!--<script>", "</script>", "\\Gamma", "a \"quoted\" 'name'", "θ[1] ∂ 名前", "&amp;"]
    rng = np.random.default_rng(0)
    leaves = [ag.Tensor(rng.standard_normal((2, 2)), requires_grad=True, name=n) for n in names]
    J = leaves[0]
    for leaf in leaves[1:]:
        J = J * leaf
    J = J.sum()
    path = draw(J).save(tmp_path / "names.html")
    page = open_page(browser, path)
    assert state(page)["step"] == "0"
    drawn = {box_title(el) for el in browser.find_elements(
        By.CSS_SELECTOR, ".ag-view:not([hidden]) g.node")}
    assert set(names) <= drawn
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.END)
    assert "Done" in step_title(browser)
    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_wrong_derivation_page_shows_hand_beside_autodiff_and_the_wrong_rule(browser, tmp_path):
    net = seed_network()
    report = seed_report(net, ref.wrong_rules("g-prime-of-A", [2]))
    path = draw(net["J"], compare=report).save(tmp_path / "wrong.html")
    open_page(browser, path)
    go_to(browser, None, "gives dZ[2]")
    lines = " ".join(el.text for el in browser.find_elements(By.CSS_SELECTOR, ".ag-step .ag-compare-line"))
    assert "first to differ" in lines and "the wrong rule:" in lines and "A[l] instead of Z[l]" in lines
    hand, autodiff = array_in(block(browser, "hand")), array_in(block(browser, "autodiff"))
    row = next(r for r in report.rows if r.label == "dZ[2]")
    np.testing.assert_allclose(hand, row.values["reference"])
    np.testing.assert_allclose(autodiff, row.values["autodiff"])
    assert np.abs(hand - autodiff).max() > 1e-3


@pytest.mark.parametrize("size", SIZES)
def test_screenshots_of_the_seed_page(sized, tmp_path, size):
    """Saved where a person can look at them (the tests cannot judge a layout by eye)."""
    browser = sized
    window(browser, size)
    J = readme_network()
    path = draw(J).save(tmp_path / "seed.html")
    open_page(browser, path)
    go_to(browser, None, "gives dW[1]")
    # the picture scales to its pane: as wide as the pane at most, and not a small island in it
    pane, picture = browser.execute_script(
        "var g = document.querySelector('.ag-graph');"
        "var s = g.querySelector('.ag-view:not([hidden]) svg');"
        "return [g.clientWidth, s.getBoundingClientRect().width]")
    assert 0.8 * pane <= picture <= pane, (pane, picture)
    shot = tmp_path / f"seed-{size}.png"
    assert browser.save_screenshot(str(shot))
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])
    assert (width, height) == SIZES[size]
    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
