"""Open the built site in headless Chromium and check what a reader sees (make docs runs it after the build).

    python3 docs/check_site.py SITE_DIR [--demo mantel] [--screenshot FILE]

The site is served over HTTP on 127.0.0.1 (as a reader's server would; file:// pages may not load fonts), and for
the index, one demo page and the API page of fpjko.solvers it checks: no error in the browser's console, every
<img> loaded (naturalWidth > 0), MathJax's output present and no raw TeX (\\frac, \\nabla) left in the page's text,
and on the API page a link to every public class of fpjko.solvers. It writes a screenshot of the demo page (default
SITE_DIR/../site_<demo>.png, beside the build). Chromium and its driver are Debian's (chromium, chromium-driver);
nothing is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import threading
import time

RAW_TEX = ("\\frac", "\\nabla", "\\partial", "\\beta^")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(site: str):
    """An HTTP server of the site on a free port (a daemon thread); returns (server, base URL)."""
    handler = functools.partial(_Quiet, directory=site)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def browser():
    """Headless Chromium through Debian's chromedriver, with the console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def inspect(driver, url: str, math: bool, timeout: float = 60.0) -> dict:
    """Load a page, wait for its images and MathJax, and report what a reader would see."""
    driver.get(url)
    t0 = time.time()
    while time.time() - t0 < timeout:
        ready = driver.execute_script(
            "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete) && "
            "(typeof MathJax === 'undefined' || !MathJax.Hub || MathJax.Hub.queue.pending === 0 && "
            " MathJax.Hub.queue.running === 0)")
        if ready and (not math or driver.execute_script("return document.querySelectorAll('.MathJax_CHTML, "
                                                        ".mjx-chtml, mjx-container').length") > 0):
            break
        time.sleep(0.25)
    return {
        "url": url,
        "title": driver.title,
        "console_errors": [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"],
        "images": driver.execute_script("return document.images.length"),
        "broken_images": driver.execute_script(
            "return Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src)"),
        "math": driver.execute_script("return document.querySelectorAll('.MathJax_CHTML, .mjx-chtml, "
                                      "mjx-container').length"),
        "raw_tex": [t for t in RAW_TEX if t in driver.execute_script("return document.body.innerText")],
        "links": driver.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.innerText)"),
    }


def public_classes() -> list[str]:
    """The public classes of fpjko.solvers."""
    import fpjko.solvers as s

    return sorted(n for n in s.__all__ if isinstance(getattr(s, n), type))


def check(site: str, demo: str = "mantel", screenshot: str | None = None) -> dict:
    """Check the index, a demo page and the API page of fpjko.solvers; return the reports and the problems."""
    server, base = serve(site)
    driver = browser()
    try:
        reports = {
            "index": inspect(driver, base + "index.html", math=True),
            "demo": inspect(driver, base + f"demos/pages/{demo}.html", math=True),
            "api": inspect(driver, base + "api/solvers.html", math=False),
        }
        shot = screenshot or os.path.join(os.path.dirname(os.path.abspath(site)), f"site_{demo}.png")
        driver.get(base + f"demos/pages/{demo}.html")
        time.sleep(1.0)
        inspect(driver, base + f"demos/pages/{demo}.html", math=True)
        driver.save_screenshot(shot)
    finally:
        driver.quit()
        server.shutdown()
    problems = []
    for page, r in reports.items():
        if r["console_errors"]:
            problems.append(f"{page}: console errors {r['console_errors']}")
        if r["broken_images"]:
            problems.append(f"{page}: images not loaded {r['broken_images']}")
        if page != "api" and not r["math"]:
            problems.append(f"{page}: no MathJax output")
        if r["raw_tex"]:
            problems.append(f"{page}: raw TeX left in the text: {r['raw_tex']}")
    if not reports["demo"]["images"]:
        problems.append("demo: the page shows no figure")
    missing = [c for c in public_classes() if c not in reports["api"]["links"]]
    if missing:
        problems.append(f"api: public classes not listed: {missing}")
    return {"reports": reports, "problems": problems, "screenshot": shot}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("site")
    p.add_argument("--demo", default="mantel")
    p.add_argument("--screenshot")
    a = p.parse_args(argv)
    res = check(a.site, a.demo, a.screenshot)
    for page, r in res["reports"].items():
        print(f"{page:<6} {r['url']}: {r['images']} images, {r['math']} MathJax elements, "
              f"{len(r['console_errors'])} console errors")
    print(f"screenshot: {res['screenshot']}")
    for prob in res["problems"]:
        print("error:", prob, file=sys.stderr)
    return 1 if res["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
