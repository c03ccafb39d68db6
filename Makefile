# fdod — one Makefile for everything.
#   make                 build build/fdod, build/fdoctl and build/fdo-agent
#   make test            install missing packages, build, run every test
#   make demo            install, build, run the end-to-end demo
#   make bench           run the benchmarks under bench/
#   make bench-fdo       the FDO benchmark of real programs (bench/fdo)
#   make check-valgrind  the C unit tests under valgrind
#   make soak            sustained ingest, pulls and uploads (SOAK_SECONDS)
#   make clean
#   make SANITIZER=address,undefined   build into build/san-address,undefined
#   make fuzz [FUZZ_SECONDS=60]        libFuzzer targets fuzz/fuzz_*.c (clang-16,
#                        ASan+UBSan, build/fuzz), each run N s; see docs/development.md "Fuzzing"
#
# Each part (common, schemas, storage, symbolizer, ...) is one static archive;
# a unit test tests/unit/<part>_<name>.c links the archives of its part and of
# the parts below it (DEPS_<part>), so dependencies point one way.

CC       ?= cc
SANITIZER ?=
ifeq ($(SANITIZER),)
BUILD    ?= build
SANFLAGS :=
else
BUILD    ?= build/san-$(SANITIZER)
SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
GEN      := $(BUILD)/gen

OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN     := -Wall -Wextra -Werror -Wno-unused-parameter
CPPFLAGS := -std=c11 -D_GNU_SOURCE -I. -I$(GEN) -MMD -MP
ALL_CFLAGS = $(CPPFLAGS) $(WARN) $(CFLAGS) $(SANFLAGS)
LDLIBS   := -lmicrohttpd -lnng -llmdb -ldw -lelf -ldebuginfod -lprotobuf-c -lcapstone -lmbedcrypto -lz -lpthread -lstdc++ -lm

PARTS    := common schemas storage symbolizer aggregator server agent
DEPS_common     := common
DEPS_schemas    := schemas common
DEPS_storage    := storage schemas common
DEPS_symbolizer := symbolizer common
DEPS_aggregator := aggregator storage symbolizer schemas common
DEPS_cli        := aggregator storage symbolizer schemas common
DEPS_server     := server aggregator storage symbolizer schemas common
DEPS_agent      := agent schemas common

PROTO_C  := $(GEN)/schemas/fdod.pb-c.c
PROTO_H  := $(GEN)/schemas/fdod.pb-c.h

srcs_of   = $(filter-out server/fdod.c,$(wildcard $(1)/*.c))
objs_of   = $(patsubst %.c,$(BUILD)/obj/%.o,$(call srcs_of,$(1)))
archive   = $(BUILD)/lib/lib$(1).a
archives  = $(foreach p,$(DEPS_$(1)),$(call archive,$(p)))

FDOD_SRCS   := server/fdod.c
FDOCTL_SRCS := $(wildcard cli/*.c)
UNIT_SRCS   := $(wildcard tests/unit/*_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all deps test unit unit-san demo bench bench-fdo clean format check-valgrind soak
all: $(BUILD)/fdod $(BUILD)/fdoctl $(BUILD)/fdo-agent

deps:
	@./deploy/install-deps.sh

# --- generated protobuf code -------------------------------------------------
$(PROTO_C) $(PROTO_H) &: schemas/fdod.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) schemas/fdod.proto

$(BUILD)/obj/schemas/fdod.pb-c.o: $(PROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -w -c $< -o $@

# Every object may include the generated header.
$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The web page, compiled into fdod as a C array (od: coreutils, always there).
$(GEN)/server/web_index.h: server/web/index.html
	@mkdir -p $(dir $@)
	{ echo '/* generated from $< by the Makefile */'; \
	  echo 'static const unsigned char web_index_html[] = {'; \
	  od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; } > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/server/web.o: $(GEN)/server/web_index.h

define part_rule
$(call archive,$(1)): $(call objs_of,$(1)) $(if $(filter schemas,$(1)),$(BUILD)/obj/schemas/fdod.pb-c.o)
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach p,$(PARTS),$(eval $(call part_rule,$(p))))

$(BUILD)/fdod: $(patsubst %.c,$(BUILD)/obj/%.o,$(FDOD_SRCS)) $(call archives,server)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(filter %.o,$^) $(call archives,server) $(LDLIBS)

$(BUILD)/fdoctl: $(patsubst %.c,$(BUILD)/obj/%.o,$(FDOCTL_SRCS)) $(call archives,cli)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(filter %.o,$^) $(call archives,cli) $(LDLIBS)

# The sampling agent needs only the schemas and common archives.
AGENT_SRCS := $(wildcard agent/*.c)
$(BUILD)/fdo-agent: $(patsubst %.c,$(BUILD)/obj/%.o,$(AGENT_SRCS)) $(call archive,schemas) $(call archive,common)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(filter %.o,$^) $(call archive,schemas) $(call archive,common) -lnng -lprotobuf-c -lpthread -lm

# tests/unit/<part>_<name>.c -> $(BUILD)/tests/<part>_<name>
.SECONDEXPANSION:
$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $$(call archives,$$(firstword $$(subst _, ,$$*))) | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(call archives,$(firstword $(subst _, ,$*))) $(LDLIBS) $(LDFLAGS_$*)

# Allocation-failure injection: the test wraps the allocator (see the test).
LDFLAGS_aggregator_allocfail := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc

unit: $(UNIT_BINS)
tools: all unit

# make test: install what is missing, build normal and sanitized, run all.
test: deps
	$(MAKE) all unit
	$(MAKE) SANITIZER=address,undefined unit
	tests/run.sh

# Every C unit test under valgrind (also part of make test).
check-valgrind: deps
	$(MAKE) all unit
	tests/valgrind.sh

# Sustained ingest + pulls + uploads; SOAK_SECONDS (default 1800).
SOAK_SECONDS ?= 1800
soak: deps all
	@mkdir -p $(BUILD)/soak
	/usr/bin/python3 tests/soak/soak.py --seconds $(SOAK_SECONDS) \
		--report $(BUILD)/soak/report.tsv

demo: deps all
	deploy/demo.sh

bench: deps all
	bench/run.sh

# The FDO benchmark of real programs (bench/fdo/README.md): hours.
bench-fdo: deps all
	bench/fdo/run.sh $(BENCH_FDO_ARGS)

# --- fuzzing (docs/development.md "Fuzzing") ---------------------------------
# fuzz/fuzz_<name>.c is a libFuzzer target built with clang-16 against the
# archives of part FUZZ_PART_<name> (and those below it), every object
# compiled with -fsanitize=fuzzer-no-link,address,undefined into build/fuzz
# by a sub-make, so build/ is never touched. fuzz/seeds.py writes the seed
# corpora (and the small binaries they come from) under build/fuzz.
FUZZ_CC      ?= clang-16
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined \
		-fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SECONDS ?= 60
FUZZ_NAMES   := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_PART_batch    := aggregator
FUZZ_PART_text     := aggregator
FUZZ_PART_elf      := storage
FUZZ_PART_dwarf    := symbolizer
FUZZ_PART_symindex := symbolizer
FUZZ_PART_cfg      := symbolizer
FUZZ_PART_probes   := symbolizer
FUZZ_PART_http     := server
FUZZ_PART_fdata    := aggregator
FUZZ_PART_perf     := schemas

.PHONY: fuzz fuzz-build fuzz-bins
fuzz: fuzz-build
	fuzz/run.sh $(FUZZ_SECONDS)

fuzz-build:
	$(MAKE) CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) OPT=-O1 \
		SANFLAGS='$(FUZZ_SAN)' fuzz-bins

# Only meaningful inside the sub-make above (BUILD=build/fuzz).
fuzz-bins: $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES)) $(BUILD)/fdoctl \
	   $(BUILD)/seeds/.done

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h fuzz/fuzz_index.h $$(call archives,$$(FUZZ_PART_$$*)) | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(call archives,$(FUZZ_PART_$*)) $(LDLIBS)

# fdoctl writes the symindex seeds; a newer fdoctl does not need new seeds.
$(BUILD)/seeds/.done: fuzz/seeds.py | $(BUILD)/fdoctl
	/usr/bin/python3 fuzz/seeds.py $(BUILD)
	@touch $@

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build var/test

-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)
