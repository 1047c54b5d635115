"""The Mantel demo: the matrix and the graphon flow both end at edge density 1/2, triangle density 0."""


def test_mantel_demo(tmp_path):
    from fpjko.demos import mantel

    s = mantel.main(["--out", str(tmp_path), "--n", "100", "--flow-n", "32", "--frames", "10"])
    m, g = s["matrix"], s["graphon"]
    assert abs(m["edge_density"] - 0.5) < 1e-2 and m["triangle_density"] < 1e-3
    assert m["max_inside"] < 1e-3 and m["min_across"] > 0.999 and abs(m["classes"][0] - 50) < 10
    assert abs(g["edge_density"] - 0.5) < 1e-2 and g["triangle_density"] < 1e-3
    assert (tmp_path / "mantel.gif").stat().st_size > 20000 and (tmp_path / "densities.png").exists()
