# Entry points: `make demo` and `make check` (see README.md).
BUILD ?= build
# the same sources under AddressSanitizer + UndefinedBehaviorSanitizer
ASAN_BUILD ?= build-asan
PYTEST ?= /usr/bin/python3 -m pytest
# any sanitizer report fails the program that made it, hence its test
SANITIZER_ENV = ASAN_OPTIONS=detect_leaks=1:exitcode=99 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=99

.PHONY: all deps build build-asan check unit e2e unit-asan e2e-asan demo bench clean

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

build-asan: deps
	@[ -f $(ASAN_BUILD)/build.ninja ] || \
		meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C $(ASAN_BUILD)

unit-asan: build-asan
	$(SANITIZER_ENV) meson test -C $(ASAN_BUILD) --print-errorlogs

e2e-asan: build-asan
	$(SANITIZER_ENV) SONDE=$(CURDIR)/$(ASAN_BUILD)/sonde $(PYTEST) -q tests/e2e

# the normal build first, then the sanitizer build: both run every test
check: unit e2e unit-asan e2e-asan

demo: build
	@bash scripts/demo $(BUILD)/sonde

bench: build
	@bash scripts/bench all

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
