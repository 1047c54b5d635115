"""The notebook build (make notebooks) on the fast literate demo: jupytext reads the percent script, a fresh
kernel runs it with its defaults, and the saved notebook holds the mathematics and the figures."""

import json


def test_mantel_notebook_executes_with_figures(tmp_path):
    from fpjko.demos import notebooks

    path = notebooks.build("mantel", str(tmp_path))
    nb = json.loads(open(path).read())
    md = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "Goodman" in md and "$$" in md and "t(K_3,W)" in md
    outs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outs if o["output_type"] == "error"]
    kinds = {k for o in outs for k in o.get("data", {})}
    assert {"image/png", "image/gif"} <= kinds
    text = "".join("".join(o.get("text", "")) for o in outs if o["output_type"] == "stream")
    assert "t(K2)=0.49" in text and "t(K3)=0.00e+00" in text
