"""Particles on the mesh: histograms, projections, point evaluation, FE densities as weighted clouds."""
