"""Regenerate the computation-graph pictures committed under docs/ (shown by docs/graphs.md and
the README), with the same command a user runs: ``autograd-lite graph``.

    python scripts/make_pictures.py              # writes docs/*.svg, docs/backprop.html and its screenshot
    python scripts/make_pictures.py --out-dir /tmp/pictures
    python scripts/make_pictures.py --no-screenshots   # without a browser

Needs Graphviz's ``dot``; the screenshot of the stepping page also needs Chromium, its driver
and selenium (``apt-get install chromium chromium-driver``, ``pip install -e ".[browser]"``).
Every picture is seeded (``--seed 0``), so the same versions of autograd_lite and Graphviz
give the same files. A screenshot records, in a PNG text chunk, the digest of the page data it
shows (``page_digest``), so a test can tell a stale screenshot without a browser.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
import sys
import tempfile
import zlib
from pathlib import Path

from autograd_lite.cli import main as autograd_lite

# file name -> the `autograd-lite graph` options that draw it
PICTURES = {
    # the seed's 3-4-1 network, eqs 26-29 and the log-loss cost of eqs 1 and 76
    "seed_graph.svg": [],
    # its backward flow: dW, db, dZ, dA with their rules, db's un-broadcast (eq 80), the values
    "seed_backward.svg": ["--backward", "--grads"],
    # values and gradients in every box, boxes coloured by max |gradient|
    "seed_gradients.svg": ["--values", "--grads", "--color", "grad", "--m", "4"],
    # a deliberately wrong derivation (g' evaluated at A[2] instead of Z[2], eq 78) coloured by
    # the comparison report: dA[2] agrees, dZ[2] is where it parts, everything below inherits it
    "seed_wrong_derivation.svg": ["--backward", "--wrong", "g-prime-of-A", "--wrong-layer", "2"],
    # a deeper network, each layer collapsed to one box
    "deep_layers.svg": ["--layers", "3,16,16,16,1", "--activations", "relu,relu,tanh,sigmoid",
                        "--layers-only"],
}


# the stepping page of the seed's network: a file a teacher can send as it is
PAGES = {"backprop.html": []}

# screenshot name -> (page, the step it shows, by a words of its title, window size)
SCREENSHOTS = {
    # eq 78 at dZ[2]: dA[2] coming in, the local factor A[2](1 − A[2]), their product, and the
    # seed's (A[2] − Y)/m beside autodiff's values
    "backprop_page.png": ("backprop.html", "sigmoid vjp gives dZ[2]", (1280, 800)),
}

DIGEST_KEY = "autograd_lite page data sha1"


def make_pictures(out_dir: Path, screenshots: bool = True) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, options in {**PICTURES, **PAGES}.items():
        status = autograd_lite(["graph", "--seed", "0", *options, "--output", str(out_dir / name)])
        if status != 0:
            print(f"make_pictures: {name} failed (exit status {status})", file=sys.stderr)
            return status
    if screenshots:
        for name, (page, title, size) in SCREENSHOTS.items():
            screenshot(out_dir / page, title, size, out_dir / name)
            print(f"wrote {out_dir / name}")
    return 0


def page_digest(html: str) -> str:
    """The sha1 of a stepping page's data block: what its screenshot shows, minus the layout.
    Numbers count to 8 significant digits (the page shows 6), so round-off that differs
    between CPUs and BLAS builds does not make a fresh screenshot look stale."""
    data = re.search(r'<script type="application/json" class="ag-data">(.*?)</script>', html, re.S)
    canonical = json.dumps(_rounded(json.loads(data.group(1))), sort_keys=True)
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.8g}") + 0.0  # + 0.0: -0.0 and 0.0 alike
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def png_text(path: Path) -> dict:
    """The tEXt chunks of a PNG, as a dict."""
    blob, texts, at = path.read_bytes(), {}, 8
    while at < len(blob):
        length, kind = struct.unpack(">I4s", blob[at:at + 8])
        if kind == b"tEXt":
            key, _, value = blob[at + 8:at + 8 + length].partition(b"\0")
            texts[key.decode("latin-1")] = value.decode("latin-1")
        at += 12 + length
    return texts


def _with_text(png: bytes, key: str, value: str) -> bytes:
    body = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:33] + chunk + png[33:]  # after the 8-byte signature and the IHDR chunk


def screenshot(page: Path, title: str, size, out: Path) -> None:
    """Open ``page`` in headless Chromium, press "next" until the step title holds ``title``,
    and save the window as a PNG carrying the page's digest."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from autograd_lite.io import write_atomically

    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", f"--window-size={size[0]},{size[1]}"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='make-pictures-')}")
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        # the page's own size, whatever the window's frame takes
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        driver.get(page.resolve().as_uri())
        for _ in range(200):
            if title in driver.find_element(By.CSS_SELECTOR, ".ag-step-title").text:
                break
            driver.find_element(By.CSS_SELECTOR, ".ag-next").click()
        else:
            raise RuntimeError(f"make_pictures: no step of {page.name} says {title!r}")
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    png = _with_text(png, DIGEST_KEY, page_digest(page.read_text(encoding="utf-8")))
    write_atomically(out, lambda stream: stream.write(png))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    parser.add_argument("--no-screenshots", action="store_true",
                        help="skip the screenshots of the stepping page (they need Chromium)")
    arguments = parser.parse_args()
    sys.exit(make_pictures(arguments.out_dir, screenshots=not arguments.no_screenshots))
