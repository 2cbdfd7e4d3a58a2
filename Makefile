# kvnet top-level Makefile.
#   make            build every binary into build/bin/
#   make deps       install build + test dependencies from Debian's packages (apt-get)
#   make check      unit + integration tests, built with ASan/UBSan (build/san/)
#   make bench      benchmark tables (tests/bench/)
#   make demo       the main job (see README.md)

BUILD    ?= build
SANITIZE ?= 0
CC       ?= gcc
PKGS     := libmnl libnftnl jansson libvirt yaml-0.1 libbpf

CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
               -Wno-missing-field-initializers -D_GNU_SOURCE -fno-strict-aliasing -I.
ifeq ($(SANITIZE),1)
CFLAGS_BASE += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS     += -fsanitize=address,undefined
endif
CFLAGS  += $(CFLAGS_BASE) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread

OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin

# tc BPF programs (ebpf/*.bpf.c): compiled with clang, embedded into netd as libbpf skeletons.
CLANG   ?= clang
BPFTOOL ?= $(or $(shell command -v bpftool 2>/dev/null),/usr/sbin/bpftool)
BPF_OUT := $(BUILD)/ebpf
BPF_CFLAGS := -O2 -g -target bpf -Wall -Werror -I. -I/usr/include/$(shell $(CC) -print-multiarch 2>/dev/null)
BPF_SKELS := $(patsubst ebpf/%.bpf.c,$(BPF_OUT)/%.skel.h,$(wildcard ebpf/*.bpf.c))
CFLAGS += -I$(BPF_OUT)

$(BPF_OUT)/%.bpf.o: ebpf/%.bpf.c $(wildcard ebpf/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BPF_OUT)/%.skel.h: $(BPF_OUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

# Component libraries: every .c of the folder except its program entry points.
COMMON_SRC := $(wildcard common/*.c)
CNI_SRC    := $(filter-out cni/main.c,$(wildcard cni/*.c))
NETD_SRC   := $(filter-out netd/main.c netd/ctl/kvnetctl.c,$(wildcard netd/*.c netd/*/*.c))
LAUNCH_SRC := $(filter-out launcher/main.c,$(wildcard launcher/*.c))
MIGRATE_SRC := $(wildcard migration/*.c)
CTL_SRC    := $(filter-out controller/main.c,$(wildcard controller/*.c))
NODE_SRC   := $(wildcard node/*.c)

COMMON_LIB := $(BUILD)/lib/libkvcommon.a
CNI_LIB    := $(BUILD)/lib/libkvcni.a
NETD_LIB   := $(BUILD)/lib/libkvnetd.a
LAUNCH_LIB := $(BUILD)/lib/libkvlaunch.a
MIGRATE_LIB := $(BUILD)/lib/libkvmigrate.a
CTL_LIB    := $(BUILD)/lib/libkvctl.a
NODE_LIB   := $(BUILD)/lib/libkvnode.a

PROGS := $(BIN)/kvnet $(BIN)/kvnet-netd $(BIN)/kvnetctl $(BIN)/kvnet-launcher $(BIN)/kvnet-controller
UNIT_SRC   := $(wildcard tests/unit/test-*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))

.PHONY: all deps check check-unit check-integration bench demo clean fmt unit-tests test-tools
all: $(PROGS)

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

$(OBJ)/%.o: %.c | $(BPF_SKELS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(COMMON_LIB): $(call objs,$(COMMON_SRC))
$(CNI_LIB): $(call objs,$(CNI_SRC))
$(NETD_LIB): $(call objs,$(NETD_SRC))
$(LAUNCH_LIB): $(call objs,$(LAUNCH_SRC))
$(MIGRATE_LIB): $(call objs,$(MIGRATE_SRC))
$(CTL_LIB): $(call objs,$(CTL_SRC))
$(NODE_LIB): $(call objs,$(NODE_SRC))
$(BUILD)/lib/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BIN)/kvnet: $(OBJ)/cni/main.o $(CNI_LIB) $(COMMON_LIB)
$(BIN)/kvnet-netd: $(OBJ)/netd/main.o $(NETD_LIB) $(COMMON_LIB)
$(BIN)/kvnetctl: $(OBJ)/netd/ctl/kvnetctl.o $(NETD_LIB) $(COMMON_LIB)
$(BIN)/kvnet-launcher: $(OBJ)/launcher/main.o $(LAUNCH_LIB) $(MIGRATE_LIB) $(COMMON_LIB)
$(BIN)/kvnet-controller: $(OBJ)/controller/main.o $(CTL_LIB) $(COMMON_LIB)
# libmicrohttpd (the embedded API) only where the controller is: netd and the launcher do not link it.
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS   := $(shell pkg-config --libs libmicrohttpd 2>/dev/null)
$(OBJ)/controller/%.o: CFLAGS += $(MHD_CFLAGS)
$(BIN)/kvnet-controller: LDLIBS += $(MHD_LIBS)
$(BUILD)/tests/test-%: LDLIBS += $(MHD_LIBS)
$(PROGS):
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The CNI plugin is linked statically (only libc and jansson): a runtime execs it for every ADD/DEL/CHECK,
# and a static binary starts ~0.3 ms sooner (no dynamic loader) and runs on any node's userland, as the
# reference plugins do. Sanitizer builds stay dynamic (ASan cannot be static).
ifneq ($(SANITIZE),1)
$(BIN)/kvnet: LDFLAGS += -static
$(BIN)/kvnet: LDLIBS := -ljansson
endif

$(BUILD)/tests/test-%: $(OBJ)/tests/unit/test-%.o $(NODE_LIB) $(CTL_LIB) $(LAUNCH_LIB) $(MIGRATE_LIB) $(NETD_LIB) $(CNI_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka -lpthread

$(BUILD)/tests/%: $(OBJ)/tests/tools/%.o $(NODE_LIB) $(NETD_LIB) $(CNI_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit-tests: $(UNIT_TESTS)
test-tools: $(TEST_TOOLS)

deps:
	./scripts/deps.sh

# Sanitizer build lives beside the normal one so both can exist.
check:
	$(MAKE) BUILD=build/san SANITIZE=1 all unit-tests test-tools
	KVNET_BUILD=build/san ./tests/run.sh

check-unit:
	$(MAKE) BUILD=build/san SANITIZE=1 all unit-tests test-tools
	KVNET_BUILD=build/san ./tests/run.sh unit

check-integration:
	$(MAKE) BUILD=build/san SANITIZE=1 all unit-tests test-tools
	KVNET_BUILD=build/san ./tests/run.sh integration

bench: all test-tools
	KVNET_BUILD=$(BUILD) ./tests/bench/all.sh

demo: all test-tools
	./scripts/demo.sh

demo-cni: all test-tools
	./scripts/demo-cni.sh

.PHONY: demo-cni

demo-migration: all test-tools
	KVNET_BUILD=$(BUILD) ./scripts/demo-migration.sh

.PHONY: demo-migration

fmt:
	clang-format -i $(wildcard */*.c */*.h */*/*.c */*/*.h tests/*/*.c)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
