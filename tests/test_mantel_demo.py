"""The Mantel demo: the matrix and the graphon flow both end at edge density 1/2, triangle density 0."""

import pytest


def test_mantel_demo(tmp_path):
    from fpjko.demos import mantel

    s = mantel.main(["--out", str(tmp_path), "--n", "100", "--flow-n", "32", "--frames", "10"])
    m, g = s["matrix"], s["graphon"]
    # the projection onto [0, 1] ends at exactly 0 and 1 (measured: triangle densities 0, entries 0 and 1, classes
    # 48 / 52, so the matrix's edge density is 2 * 48 * 52 / 100^2 = 0.4992; the graphon's 0.5 exactly)
    assert abs(m["edge_density"] - 0.5) < 1e-2 and m["triangle_density"] < 1e-12
    assert m["max_inside"] < 1e-12 and m["min_across"] > 1 - 1e-12 and abs(m["classes"][0] - 50) < 10
    assert m["edge_density"] == pytest.approx(2 * m["classes"][0] * m["classes"][1] / 100 ** 2, abs=1e-14)
    assert abs(g["edge_density"] - 0.5) < 1e-3 and g["triangle_density"] < 1e-12
    assert (tmp_path / "mantel.gif").stat().st_size > 20000 and (tmp_path / "densities.png").exists()
