# wfetch: the two commands a fresh machine needs are `make run URL=...`
# and `make test`. Both install what is missing first (`make deps`).

URL ?= http://127.0.0.1:8080/
ARGS ?=
CARGO ?= cargo

.PHONY: deps run build release test lint fmt bench bench-cpu bench-smoke soak soak-smoke fuzz-smoke clean

# The guests' targets (wasm32-unknown-unknown for the default guest,
# wasm32-wasip2 for the others), nginx and curl (for the tests).
deps: targets
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
		(apt-get update -qq || sudo apt-get update -qq) && \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light curl || \
		 sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light curl); }
	@command -v curl >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl)
	@# The C guest (guest/c-template): clang + wasm-ld, wit-bindgen 0.63 and wasm-tools,
	@# each cargo tool with only the features build.sh uses (minutes less to compile).
	@{ command -v clang >/dev/null 2>&1 && command -v wasm-ld >/dev/null 2>&1; } || { \
		(apt-get update -qq || sudo apt-get update -qq) && \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang lld || \
		 sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang lld); }
	@wit-bindgen --version 2>/dev/null | grep -q '^wit-bindgen-cli 0\.63\.' || $(CARGO) install wit-bindgen-cli --version 0.63.0 --locked --no-default-features --features c
	@command -v wasm-tools >/dev/null 2>&1 || $(CARGO) install wasm-tools --version 1.263.0 --locked --no-default-features --features component,validate,print

.PHONY: targets
targets:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

build: targets
	$(CARGO) build --release

# Fetch URL with the release binary: make run URL=https://example.com/ ARGS="-o page.html"
run: build
	./target/release/wfetch $(ARGS) $(URL)

test: deps c-guest
	$(CARGO) test --workspace

# The guest written in C (guest/c-template): target/c-guest/wfetch_guest_c.wasm.
.PHONY: c-guest
c-guest:
	bash guest/c-template/build.sh

# The guests are their own workspace, linted for the targets build.rs
# builds them for and with its target dir, so nothing is built twice.
lint:
	$(CARGO) fmt --all -- --check
	cd guest && $(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd guest && $(CARGO) clippy --release --workspace --exclude wfetch-guest-http --target wasm32-wasip2 --target-dir ../target/guest -- -D warnings
	cd guest && $(CARGO) clippy --release -p wfetch-guest-http --target wasm32-unknown-unknown --target-dir ../target/guest -- -D warnings

fmt:
	$(CARGO) fmt --all
	cd guest && $(CARGO) fmt --all

# Benchmarks against curl (issue: performance). Full figures: make bench.
bench: deps build
	python3 bench/bench.py

# User and system CPU of wfetch and curl over many small files (where the
# small-file gap is; OTHER=path/to/wfetch adds a second build to compare).
bench-cpu: deps build
	python3 bench/cpu.py $(if $(OTHER),--other $(OTHER))

# The same script on a tiny size with the debug binary: shows it works,
# judges nothing (CI).
bench-smoke:
	$(CARGO) build
	python3 bench/bench.py --size 8388608 --small 40 --repeat 1 --wfetch target/debug/wfetch
	python3 bench/cpu.py --small 20 --runs 1 --wfetch target/debug/wfetch

# 10,000 sequential + 1,000 concurrent fetches in one process.
soak:
	bench/soak.sh 10000 1000

soak-smoke:
	SOAK_PROFILE= bench/soak.sh 200 100

# Each fuzz target of the guest's HTTP core for a few seconds.
fuzz-smoke:
	bench/fuzz-smoke.sh 5

clean:
	$(CARGO) clean
