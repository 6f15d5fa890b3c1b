# Entry points: `make demo` and `make check` (see README.md).
BUILD ?= build
PYTEST ?= /usr/bin/python3 -m pytest

.PHONY: all deps build check unit e2e demo bench clean

all: build

deps:
	@bash scripts/install-deps

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) >/dev/null
	@ninja -C $(BUILD)

unit: build
	meson test -C $(BUILD) --print-errorlogs

e2e: build
	SONDE=$(CURDIR)/$(BUILD)/sonde $(PYTEST) -q tests/e2e

check: unit e2e

demo: build
	@bash scripts/demo $(BUILD)/sonde

bench: build
	@bash scripts/bench all

clean:
	rm -rf $(BUILD)
