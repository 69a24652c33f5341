# The two set-up commands of the README. Each creates .venv/ first when it is missing or stale.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: serve test test-fast bench vendor-js

$(STAMP): pyproject.toml requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,deploy]'
	$(VENV)/bin/pip install --quiet --no-deps -r requirements-nodeps.txt  # why: see the file
	touch $(STAMP)

serve: $(STAMP)  ## serve models.json on 127.0.0.1:8000 with embedded Ray
	$(VENV)/bin/runway-models serve

test: $(STAMP)  ## run every test, the slow ones (real Ray Serve, real models) included
	$(VENV)/bin/python -m pytest

test-fast: $(STAMP)  ## the inner loop: every test not marked slow (no Ray, no real model runs; 62 s on 2 cores, README)
	$(VENV)/bin/python -m pytest -m "not slow"

bench: $(STAMP)  ## served vs the thread-pool and serialized plain-uvicorn peers, every served model
	$(VENV)/bin/python -m loadtest.bench --model all

# The playground's only third-party script, vendored so the page works offline (no CDN). Re-run to update:
# `make vendor-js SOCKET_IO_CLIENT=4` takes the newest 4.x from npm and records its version and licence.
SOCKET_IO_CLIENT ?= 4
VENDOR_JS := serve/playground/static/vendor
vendor-js:  ## vendor socket.io-client's browser build from npm into $(VENDOR_JS)
	rm -rf build/vendor-js && mkdir -p build/vendor-js $(VENDOR_JS)
	cd build/vendor-js && npm pack --silent socket.io-client@$(SOCKET_IO_CLIENT) > tarball && tar xzf "$$(cat tarball)"
	cp build/vendor-js/package/dist/socket.io.min.js $(VENDOR_JS)/socket.io.min.js
	cp build/vendor-js/package/LICENSE $(VENDOR_JS)/socket.io-client.LICENSE
	cd build/vendor-js/package && node -e 'const p=require("./package.json");console.log(p.name+"@"+p.version+" "+p.license+" (npm pack; make vendor-js)")' > $(CURDIR)/$(VENDOR_JS)/VERSION
	cat $(VENDOR_JS)/VERSION
