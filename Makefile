# kvnet top-level Makefile.
#   make            build every binary into build/bin/
#   make deps       install build + test dependencies from Debian's packages (apt-get)
#   make test-deps  build the test peers (tests/peers/versions) from Go source into the cache
#   make check      unit + integration tests, built with ASan/UBSan (build/san/)
#   make fuzz       libFuzzer harnesses (tests/fuzz/) into build/fuzz/; make fuzz-smoke runs each briefly
#   make bench      benchmark tables (tests/bench/)
#   make demo       the main job (see README.md)

BUILD    ?= build
SANITIZE ?= 0
CC       ?= gcc
PKGS     := libmnl libnftnl jansson libvirt yaml-0.1 libbpf

# A missing library fails at once with its name, not with compile errors (goals that compile nothing
# are exempt).
ifneq ($(filter-out deps test-deps clean fmt,$(or $(MAKECMDGOALS),all)),)
MISSING_PKGS := $(shell for p in $(sort $(PKGS) libmicrohttpd gnutls libcurl); do \
                  pkg-config --exists $$p || echo $$p; done)
ifneq ($(MISSING_PKGS),)
$(error missing pkg-config package: $(MISSING_PKGS) (run make deps))
endif
endif

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
LAUNCH_SRC := $(filter-out launcher/main.c,$(wildcard launcher/*.c launcher/*/*.c))
# The launcher's VMI parser alone (no libvirt): the controller checks manifests with it.
LAUNCH_VMI_SRC := $(wildcard launcher/vmi/*.c) launcher/warnings.c
MIGRATE_SRC := $(wildcard migration/*.c)
CTL_SRC    := $(filter-out controller/main.c,$(wildcard controller/*.c))
NODE_SRC   := $(wildcard node/*.c)
HANDLER_SRC := $(wildcard handler/*.c)
KUBE_SRC   := $(wildcard kube/*.c)
AGENT_SRC  := $(filter-out agent/main.c,$(wildcard agent/*.c))
# multus-compat/: the library; multus-compat/plugin/ is the kvnet-multus program.
MULTUS_SRC := $(wildcard multus-compat/*.c)
MULTUS_PLUGIN_SRC := $(wildcard multus-compat/plugin/*.c)

COMMON_LIB := $(BUILD)/lib/libkvcommon.a
CNI_LIB    := $(BUILD)/lib/libkvcni.a
NETD_LIB   := $(BUILD)/lib/libkvnetd.a
LAUNCH_LIB := $(BUILD)/lib/libkvlaunch.a
LAUNCH_VMI_LIB := $(BUILD)/lib/libkvlaunchvmi.a
MIGRATE_LIB := $(BUILD)/lib/libkvmigrate.a
CTL_LIB    := $(BUILD)/lib/libkvctl.a
NODE_LIB   := $(BUILD)/lib/libkvnode.a
HANDLER_LIB := $(BUILD)/lib/libkvhandler.a
KUBE_LIB   := $(BUILD)/lib/libkvkube.a
AGENT_LIB  := $(BUILD)/lib/libkvagent.a
MULTUS_LIB := $(BUILD)/lib/libkvmultus.a
# Helpers shared by the unit tests (tests/unit/helpers.c).
TEST_LIB   := $(BUILD)/lib/libkvtest.a

PROGS := $(BIN)/kvnet $(BIN)/kvnet-netd $(BIN)/kvnetctl $(BIN)/kvnet-launcher $(BIN)/kvnet-controller \
         $(BIN)/kvnet-node $(BIN)/kvnet-multus
UNIT_SRC   := $(wildcard tests/unit/test-*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c)) $(BUILD)/tests/flowmon
# A tool of several files has its own folder: tests/tools/<tool>/*.c -> one binary.
FLOWMON_SRC := $(wildcard tests/tools/flowmon/*.c)

.PHONY: all deps test-deps check check-unit check-integration bench demo clean fmt unit-tests test-tools fuzz fuzz-smoke deploy-crds
all: $(PROGS)

objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The few sources that include a BPF skeleton: the compiler's dependency files (-MMD) know it only
# after a first build, so they name it here.
$(OBJ)/netd/link/vlan.o: $(BPF_OUT)/vlan.skel.h
$(OBJ)/netd/migration/migredir.o $(OBJ)/tests/unit/test-migredir.o: $(BPF_OUT)/migredir.skel.h

$(COMMON_LIB): $(call objs,$(COMMON_SRC))
$(CNI_LIB): $(call objs,$(CNI_SRC))
$(NETD_LIB): $(call objs,$(NETD_SRC))
$(LAUNCH_LIB): $(call objs,$(LAUNCH_SRC))
$(LAUNCH_VMI_LIB): $(call objs,$(LAUNCH_VMI_SRC))
$(MIGRATE_LIB): $(call objs,$(MIGRATE_SRC))
$(CTL_LIB): $(call objs,$(CTL_SRC))
$(NODE_LIB): $(call objs,$(NODE_SRC))
$(HANDLER_LIB): $(call objs,$(HANDLER_SRC))
$(KUBE_LIB): $(call objs,$(KUBE_SRC))
$(AGENT_LIB): $(call objs,$(AGENT_SRC))
$(MULTUS_LIB): $(call objs,$(MULTUS_SRC))
$(TEST_LIB): $(call objs,tests/unit/helpers.c)
$(BUILD)/lib/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BIN)/kvnet: $(OBJ)/cni/main.o $(CNI_LIB) $(COMMON_LIB)
$(BIN)/kvnet-netd: $(OBJ)/netd/main.o $(NETD_LIB) $(KUBE_LIB) $(COMMON_LIB)
$(BIN)/kvnetctl: $(OBJ)/netd/ctl/kvnetctl.o $(NETD_LIB) $(KUBE_LIB) $(COMMON_LIB)
$(BIN)/kvnet-launcher: $(OBJ)/launcher/main.o $(LAUNCH_LIB) $(MIGRATE_LIB) $(COMMON_LIB)
$(BIN)/kvnet-controller: $(OBJ)/controller/main.o $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
$(BIN)/kvnet-node: $(OBJ)/agent/main.o $(AGENT_LIB) $(HANDLER_LIB) $(KUBE_LIB) $(NODE_LIB) $(COMMON_LIB)
# kvnet-multus loads libcurl when it needs the API (kube/dl/curl.c, dlopen), not at every exec: it is on every pod's
# ADD/DEL path, and libcurl's ~30 libraries cost more than a delegate's whole ADD.
$(BIN)/kvnet-multus: $(call objs,$(MULTUS_PLUGIN_SRC)) $(OBJ)/kube/dl/curl.o $(MULTUS_LIB) $(KUBE_LIB) $(NODE_LIB) $(COMMON_LIB)
# libmicrohttpd: the embedded API (the controller) and netd's metrics endpoint (netd/core/metrics.c); the launcher,
# the CNI plugin and the node side do not link it.
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd gnutls 2>/dev/null)
MHD_LIBS   := $(shell pkg-config --libs libmicrohttpd gnutls 2>/dev/null)
$(OBJ)/controller/%.o: CFLAGS += $(MHD_CFLAGS)
$(BIN)/kvnet-controller: LDLIBS += $(MHD_LIBS)
$(BUILD)/tests/test-controller-%: LDLIBS += $(MHD_LIBS)
$(OBJ)/netd/core/metrics.o $(OBJ)/common/metrics-http.o: CFLAGS += $(MHD_CFLAGS)
$(BIN)/kvnet-netd $(BIN)/kvnet-node $(BUILD)/tests/%: LDLIBS += $(MHD_LIBS)
# libcurl (the Kubernetes client, kube/) only where kube is linked: netd (the claim store's kube backend,
# netd/state/claimstore-kube.c), the node side and the tests; kvnet-multus loads it at run time (above); the CNI
# plugin and the launcher do not use it.
CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null)
$(OBJ)/kube/%.o $(OBJ)/agent/%.o $(OBJ)/multus-compat/plugin/%.o $(OBJ)/tests/unit/test-kube.o $(OBJ)/tests/tools/kubeclient.o: CFLAGS += $(CURL_CFLAGS)
$(BUILD)/tests/% $(BIN)/kvnet-netd $(BIN)/kvnetctl $(BIN)/kvnet-node $(BIN)/kvnet-controller: LDLIBS += $(CURL_LIBS)
# the on-demand loader's test links no libcurl either
$(BUILD)/tests/test-kube-curl-dl: CURL_LIBS :=
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

# What each unit test links beyond its own object and the test helpers (a test not listed links every
# component library).
UNIT_LIBS_test-common           := $(COMMON_LIB)
UNIT_LIBS_test-cni              := $(CNI_LIB) $(COMMON_LIB)
UNIT_LIBS_test-controller-store := $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-controller-reconciler := $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-controller-vm    := $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-controller-sched := $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-controller-migration := $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-controller-subresource := $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-controller-proto := $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-controller-ipamclaim := $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-launcher         := $(LAUNCH_LIB) $(MIGRATE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-migrate          := $(LAUNCH_LIB) $(MIGRATE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-node             := $(NODE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-node-pod         := $(NODE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-node-chain       := $(NODE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-handler          := $(HANDLER_LIB) $(COMMON_LIB)
UNIT_LIBS_test-kube             := $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-kube-event       := $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-kube-curl-dl     := $(OBJ)/kube/dl/curl.o $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-agent            := $(AGENT_LIB) $(HANDLER_LIB) $(NODE_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-multus           := $(MULTUS_LIB) $(KUBE_LIB) $(COMMON_LIB)
UNIT_LIBS_test-multus-ipamclaim := $(MULTUS_LIB) $(KUBE_LIB) $(COMMON_LIB)
$(foreach t,bind-masq claimstore dhcp ipam journal link migredir nat-nft netd-endpoint netd-manager \
  netd-reaper netd-request sriov,\
  $(eval UNIT_LIBS_test-$(t) := $(NETD_LIB) $(KUBE_LIB) $(COMMON_LIB)))
ALL_LIBS := $(HANDLER_LIB) $(NODE_LIB) $(CTL_LIB) $(LAUNCH_LIB) $(MIGRATE_LIB) $(NETD_LIB) $(KUBE_LIB) $(CNI_LIB) $(COMMON_LIB)

.SECONDEXPANSION:
$(BUILD)/tests/test-%: $(OBJ)/tests/unit/test-%.o $(TEST_LIB) $$(or $$(UNIT_LIBS_test-$$*),$$(ALL_LIBS))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka -lpthread

$(BUILD)/tests/%: $(OBJ)/tests/tools/%.o $(NODE_LIB) $(NETD_LIB) $(KUBE_LIB) $(CNI_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The Kubernetes client's CLI links kube (and so libcurl), nothing else.
$(BUILD)/tests/kubeclient: $(OBJ)/tests/tools/kubeclient.o $(KUBE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The CRD generator links the controller's tables (controller/crd.c, schema.c, table.c, store.c).
$(BUILD)/tests/crdgen: $(OBJ)/tests/tools/crdgen.o $(CTL_LIB) $(LAUNCH_VMI_LIB) $(KUBE_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MHD_LIBS)

$(BUILD)/tests/flowmon: $(call objs,$(FLOWMON_SRC)) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Objects and skeletons reached only through pattern rules are intermediate files to make, which
# deletes them after each build and so rebuilds them every time: keep them.
.SECONDARY: $(call objs,$(UNIT_SRC) $(wildcard tests/tools/*.c) $(FLOWMON_SRC)) $(BPF_SKELS) $(BPF_SKELS:.skel.h=.bpf.o)

unit-tests: $(UNIT_TESTS)
test-tools: $(TEST_TOOLS)

# deploy/crds/: the CRDs a cluster installs, generated from the embedded API's tables (committed; the drift check
# is in tests/integration/test-deploy.sh). Run after changing controller/schema.c, table.c or store.c.
deploy-crds: $(BUILD)/tests/crdgen
	rm -f deploy/crds/*.yaml
	$(BUILD)/tests/crdgen deploy/crds

# libFuzzer harnesses, tests/fuzz/fuzz-<name>.c, each built by clang from its own sources (below) into
# $(BUILD)/fuzz/. fuzz-smoke runs each for FUZZ_SECONDS over its seed corpus tests/fuzz/corpus/<harness>/
# (new inputs go to $(BUILD)/fuzz/corpus/<harness>/, findings to $(BUILD)/fuzz/<harness>-crash-*).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 5
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -D_GNU_SOURCE -I. -I$(BPF_OUT) -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
FUZZ_HARNESSES := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS    := $(addprefix $(BUILD)/fuzz/,$(FUZZ_HARNESSES))
FUZZ_SRC_fuzz-cni              := $(CNI_SRC) $(COMMON_SRC)
FUZZ_SRC_fuzz-controller-store := controller/store.c controller/vmispec.c controller/quantity.c controller/launchcheck.c \
                                  controller/ipamclaim.c controller/metrics.c kube/event.c $(LAUNCH_VMI_SRC) \
                                  $(COMMON_SRC)
FUZZ_SRC_fuzz-controller-proto := controller/kproto.c controller/store.c controller/vmispec.c controller/quantity.c \
                                  controller/launchcheck.c controller/ipamclaim.c controller/metrics.c kube/event.c \
                                  $(LAUNCH_VMI_SRC) $(COMMON_SRC)
FUZZ_SRC_fuzz-dhcp             := netd/dhcp/dhcp4.c netd/dhcp/dhcp6.c $(COMMON_SRC)
FUZZ_SRC_fuzz-journal          := netd/state/journal.c $(COMMON_SRC)
FUZZ_SRC_fuzz-netd-request     := $(NETD_SRC) $(KUBE_SRC) $(COMMON_SRC)
FUZZ_SRC_fuzz-netd-config      := $(NETD_SRC) $(KUBE_SRC) $(COMMON_SRC)
FUZZ_SRC_fuzz-netd-records     := $(NETD_SRC) $(KUBE_SRC) $(COMMON_SRC)
FUZZ_SRC_fuzz-sriov-sysfs      := $(NETD_SRC) $(KUBE_SRC) $(COMMON_SRC)
FUZZ_SRC_fuzz-launcher-proto   := $(NODE_SRC) $(COMMON_SRC)
FUZZ_SRC_fuzz-vmi              := $(LAUNCH_SRC) $(MIGRATE_SRC) $(COMMON_SRC)
FUZZ_SRC_fuzz-kube             := kube/config.c kube/yaml.c kube/util.c kube/watch-parse.c kube/list.c $(COMMON_SRC)
FUZZ_SRC_fuzz-multus           := $(MULTUS_SRC) kube/event.c $(COMMON_SRC)
$(BUILD)/fuzz/fuzz-netd-request $(BUILD)/fuzz/fuzz-netd-config $(BUILD)/fuzz/fuzz-netd-records: $(BPF_SKELS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $$(FUZZ_SRC_$$*)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(MHD_CFLAGS) $< $(FUZZ_SRC_$*) $(FUZZ_LIBS) $(CURL_LIBS) $(MHD_LIBS) -o $@

fuzz: $(FUZZ_BINS)

fuzz-smoke: $(FUZZ_BINS)
	@set -e; for h in $(FUZZ_HARNESSES); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$h; \
		echo "fuzz-smoke: $$h, $(FUZZ_SECONDS) s"; \
		if ! $(BUILD)/fuzz/$$h -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
			-artifact_prefix=$(BUILD)/fuzz/$$h- $(BUILD)/fuzz/corpus/$$h tests/fuzz/corpus/$$h \
			>$(BUILD)/fuzz/$$h.log 2>&1; then \
			tail -n 40 $(BUILD)/fuzz/$$h.log; echo "fuzz-smoke: $$h FAILED"; exit 1; \
		fi; \
		grep -a '^Done\|DONE' $(BUILD)/fuzz/$$h.log | tail -n 1; \
	done

deps:
	./scripts/deps.sh

# Real test peers (reference CNI plugins, cnitool, etcd, kube-apiserver, virtctl) built with Go at pinned releases
# into ${KVNET_CACHE:-/var/cache/kvnet}/peers/; instant when built already. See docs/testing.md.
test-deps:
	./scripts/test-peers.sh

# Sanitizer build lives beside the normal one so both can exist. check runs all tests, check-unit and
# check-integration one kind.
check check-unit check-integration:
	$(MAKE) BUILD=build/san SANITIZE=1 all unit-tests test-tools
	KVNET_BUILD=build/san ./tests/run.sh $(patsubst check,all,$(patsubst check-%,%,$@))

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
