# fdod — one Makefile for everything.
#   make                 build build/fdod and build/fdoctl
#   make test            install missing packages, build, run every test
#   make demo            install, build, run the end-to-end demo
#   make bench           run the benchmarks under bench/
#   make clean
#   make SANITIZER=address,undefined   build into build/san-address,undefined
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
LDLIBS   := -lnng -llmdb -ldw -lelf -lprotobuf-c -lz -lpthread -lstdc++ -lm

PARTS    := common schemas storage symbolizer aggregator server
DEPS_common     := common
DEPS_schemas    := schemas common
DEPS_storage    := storage schemas common
DEPS_symbolizer := symbolizer common
DEPS_aggregator := aggregator storage symbolizer schemas common
DEPS_cli        := aggregator storage symbolizer schemas common
DEPS_server     := server aggregator storage symbolizer schemas common

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

.PHONY: all deps test unit unit-san demo bench clean format
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
	$(CC) $(ALL_CFLAGS) -o $@ $< $(call archives,$(firstword $(subst _, ,$*))) $(LDLIBS)

unit: $(UNIT_BINS)
tools: all unit

# make test: install what is missing, build normal and sanitized, run all.
test: deps
	$(MAKE) all unit
	$(MAKE) SANITIZER=address,undefined unit
	tests/run.sh

demo: deps all
	deploy/demo.sh

bench: deps all
	bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build var/test

-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)
