"""The documentation site: a quick build (Sphinx with -W, the Mantel demo executed, the full API reference) opened in
headless Chromium (Debian's chromium and chromedriver): no console error, every image loaded, MathJax's output and
no raw TeX, every public class of fpjko.solvers listed; a screenshot of the demo page beside the build."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_site_builds_and_renders_in_a_browser(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, FPJKO_DOCS_DEMOS="mantel")
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
                        os.path.join(ROOT, "docs"), str(site)], env=env, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert (site / "_static" / "mathjax" / "MathJax.js").exists()
    for page in ("conventions.html", "performance.html", "guarantees.html", "install.html", "api/kernels.html",
                 "demos/pages/mantel.html"):
        assert (site / page).stat().st_size > 5000, page
    html = (site / "demos" / "pages" / "mantel.html").read_text()
    assert "mantel.py" in html and "mantel.ipynb" in html and "mpirun -n 2 python3 -m fpjko.demos.mantel" in html
    # the performance tables are the benchmarks' JSON, formatted (not typed by hand)
    import json

    data = json.load(open(os.path.join(ROOT, "docs", "benchmarks", "kernels-n1.json")))
    perf = (site / "performance.html").read_text()
    assert perf.count("<table") >= 20
    for row in data["fe_pass"]:
        assert f"<td><p>{row['pass_s']:.4g}</p></td>" in perf, row
    assert "http://" not in (site / "index.html").read_text().split("<body")[0].replace("http://www.w3.org", "")

    sys.path.insert(0, os.path.join(ROOT, "docs"))
    import check_site

    res = check_site.check(str(site), "mantel", str(tmp_path / "site_mantel.png"))
    assert not res["problems"], res["problems"]
    rep = res["reports"]
    assert rep["demo"]["images"] >= 2 and rep["index"]["math"] >= 1 and rep["demo"]["math"] >= 1
    assert len(check_site.public_classes()) >= 14          # measured 14: the walk is not empty
    assert (tmp_path / "site_mantel.png").stat().st_size > 20000

