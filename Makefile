# Two commands matter: `make run` (the whole system on this machine) and `make test`.
SHELL := /bin/bash
# The Lambda runtime is python3.13: find a working interpreter of that version (pyenv or system).
PYTHON ?= $(shell for p in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3 2>/dev/null) \
	$$(command -v python3.13); do $$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null \
	&& echo $$p && break; done)
VENV := .venv
SAMVENV := .venv-sam
BIN := $(VENV)/bin
export AWS_DEFAULT_REGION ?= eu-west-1
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled

.PHONY: run demo test lint typecheck sam-validate sam-build bench ci clean console console-test console-deploy

$(BIN)/.installed: requirements-dev.txt layers/loyalty/requirements.txt
	@test -n "$(PYTHON)" || { echo "python3.13 not found (the Lambda runtime is python3.13)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	# SAM's translator expands policy templates for the permission test; it pins pydantic ~=2.13
	# while the runtime pins 2.14 (its policy code does not use pydantic): no dependency resolution
	$(BIN)/pip install -q --disable-pip-version-check --no-deps aws-sam-translator==1.115.0
	touch $@

$(SAMVENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAMVENV)
	$(SAMVENV)/bin/pip install -q --disable-pip-version-check -r requirements-sam.txt
	touch $@

venv: $(BIN)/.installed

run: $(BIN)/.installed console/dist  ## start the local stack (moto + API + pollers + schedules + console)
	$(BIN)/python -m devstack run $(ARGS)

demo: $(BIN)/.installed  ## start the stack, play the multi-channel journey, print what the system knows
	$(BIN)/python -m devstack demo $(ARGS)

test: $(BIN)/.installed console/dist  ## unit, property, integration, end-to-end, console and browser tests
	$(BIN)/pytest $(ARGS)
	$(if $(ARGS),,cd console && npm test)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

sam-validate: $(SAMVENV)/.installed
	$(SAMVENV)/bin/sam validate --lint

sam-build: $(SAMVENV)/.installed $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(SAMVENV)/bin/sam build --cached
	$(BIN)/python -m devstack.check_layer .aws-sam/build/LoyaltyLayer

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run_all

ci: test lint typecheck sam-validate sam-build demo bench

clean:
	rm -rf $(VENV) $(SAMVENV) .aws-sam console/node_modules console/dist

# ---- console ----
# The staff console (console/): npm ci once per lock file, built into console/dist (served by
# the local stack at /console/ and uploaded to S3 by console-deploy).
CONSOLE_SRC := $(shell find console/src -type f 2>/dev/null) console/index.html console/vite.config.ts

console/node_modules/.installed: console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund
	touch $@

console/node_modules: console/node_modules/.installed

console/dist: console/node_modules/.installed $(CONSOLE_SRC)
	cd console && npm run build
	touch $@

console: console/dist  ## build the staff console

console-test: console/node_modules/.installed  ## the console's component tests (Vitest)
	cd console && npm test

# Upload the built console and its config.json to the stack's bucket, then invalidate CloudFront.
# config.json (hosted UI sign-in, OAuth code + PKCE) is made from the stack's outputs: the staff
# pool's id, app client id and hosted UI domain URL. STACK defaults to samconfig's dev stack;
# needs the AWS CLI, credentials and AWS_REGION (or AWS_DEFAULT_REGION).
STACK ?= omnichannel-loyalty-dev
console-deploy: console/dist
	@set -e; out() { aws cloudformation describe-stacks --stack-name $(STACK) \
		--query "Stacks[0].Outputs[?OutputKey=='$$1'].OutputValue" --output text; }; \
	bucket=$$(out ConsoleBucketName); dist=$$(out ConsoleDistributionId); \
	region=$${AWS_REGION:-$$AWS_DEFAULT_REGION}; \
	printf '{"apiBase": "", "auth": {"mode": "oidc", "authority": "https://cognito-idp.%s.amazonaws.com/%s", "clientId": "%s", "domain": "%s", "region": "%s"}}\n' \
		"$$region" "$$(out StaffUserPoolId)" "$$(out StaffConsoleClientId)" "$$(out StaffHostedUiDomain)" "$$region" \
		> console/dist/config.json; \
	aws s3 sync console/dist "s3://$$bucket/console/" --delete --exclude config.json \
		--cache-control "public, max-age=31536000, immutable" --exclude index.html; \
	aws s3 cp console/dist/index.html "s3://$$bucket/console/index.html" --cache-control no-cache; \
	aws s3 cp console/dist/config.json "s3://$$bucket/console/config.json" --cache-control no-cache \
		--content-type application/json; \
	aws cloudfront create-invalidation --distribution-id "$$dist" --paths "/console/index.html" "/console/config.json"; \
	echo "console: $$(out ConsoleUrl)"

