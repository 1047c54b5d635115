# Every target runs inside the project's Debian trixie environment through docker/run,
# which provisions it on first use (a Docker image, or a debootstrap root file system).
RUN  ?= docker/run
OUT  ?= results
PYTEST_ARGS ?=

NOTEBOOKS ?= mantel jko_vs_pde jko_geodesic double_well particles_vs_fe sgd_not_gibbs phase_transition mean_field_network wide_minima aggregation digits

.PHONY: demo test bench notebooks docs env shell
demo:            ## the main demo: 2D double-well Fokker-Planck, PNGs, VTX/XDMF series, summary
	$(RUN) xvfb-run -a python3 -m fpjko.demos.double_well --out $(OUT)/double_well
test:            ## the test suite (serial and mpirun -n 2 paths), two workers (pytest-xdist), one file per worker
	$(RUN) xvfb-run -a python3 -m pytest -q -rs -n 2 --dist loadfile --durations=25 $(PYTEST_ARGS)
bench:           ## benchmarks: tables on stdout, JSON under $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.ou_vs_fd --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.particles --out $(OUT)/benchmarks
	$(RUN) mpirun -n 2 python3 -m benchmarks.particles --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.jko --out $(OUT)/benchmarks
	$(RUN) mpirun -n 2 python3 -m benchmarks.jko --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.jko_newton --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.fp_scaling --out $(OUT)/benchmarks
	$(RUN) mpirun -n 2 python3 -m benchmarks.fp_scaling --out $(OUT)/benchmarks
	$(RUN) mpirun -n 2 python3 -m benchmarks.jko_newton --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.interaction --out $(OUT)/benchmarks
	$(RUN) mpirun -n 2 python3 -m benchmarks.interaction --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.deep_relaxation --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.kernels --out $(OUT)/benchmarks
	$(RUN) mpirun -n 2 python3 -m benchmarks.kernels --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.front_door --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.jko_spacetime --out $(OUT)/benchmarks
	$(RUN) python3 -m benchmarks.digits --out $(OUT)/benchmarks
	$(RUN) mpirun -n 2 python3 -m benchmarks.digits --out $(OUT)/benchmarks
	mkdir -p docs/benchmarks && cp $(OUT)/benchmarks/*.json docs/benchmarks/   # the site's performance tables
docs:            ## the documentation site (Sphinx, demos executed and cached, offline MathJax): results/docs/index.html
	$(RUN) python3 -m sphinx -W --keep-going -b html docs $(OUT)/docs
	$(RUN) python3 docs/check_site.py $(OUT)/docs --demo aggregation --screenshot $(OUT)/site_aggregation.png
notebooks:       ## the literate demos as executed notebooks with their figures, under $(OUT)/notebooks
	$(RUN) python3 -m fpjko.demos.notebooks --out $(OUT)/notebooks $(NOTEBOOKS)
env:             ## only provision the environment
	$(RUN) --provision-only
shell:
	$(RUN) bash
