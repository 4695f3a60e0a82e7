# Warren build. `make` builds build/warrend; `make run` and `make test` install
# missing Debian packages first (scripts/deps.sh), see README.md.

CC       ?= cc
CLANG    ?= clang
VERSION  := 0.1.0
PREFIX   ?= /usr/local

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter -Wformat=2
CFLAGS   ?= -O2 -g
CPPFLAGS += -std=c17 -D_GNU_SOURCE -Isrc -Iinclude -DWR_VERSION='"$(VERSION)"' \
            -DWR_PREFIX='"$(PREFIX)"'
LDLIBS   := -ljansson -lpcre2-8 -lseccomp -lssl -lcrypto -lnghttp2 -lpthread \
            -lmozjs-102 -lstdc++
# The JavaScript engine (src/script): C++ on Debian's SpiderMonkey 102.
CXX      ?= g++
CLANGXX  ?= clang++
MOZJS_CFLAGS := -isystem /usr/include/mozjs-102
CXXFLAGS_W := -std=c++20 -D_GNU_SOURCE -Isrc -Iinclude $(MOZJS_CFLAGS) -Wall -Wextra \
            -Wno-unused-parameter -Wno-missing-field-initializers -Wno-dangling-pointer

# Every part folder compiles into one library; warrend is main.c on top of it.
PARTS    := core conf http route tls control router daemon lib app sandbox
LIB_SRC  := $(foreach p,$(PARTS),$(wildcard src/$(p)/*.c))
LIB_CXX  := $(wildcard src/script/*.cpp)
LIB_OBJ  := $(LIB_SRC:%.c=build/obj/%.o) $(LIB_CXX:%.cpp=build/obj/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=build/asan/%.o) $(LIB_CXX:%.cpp=build/asan/%.o)
FUZZ_OBJ := $(LIB_SRC:%.c=build/fuzzobj/%.o) $(LIB_CXX:%.cpp=build/fuzzobj/%.o)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/unit/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)

SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_RUNS ?= 200000
# Each fuzz target runs FUZZ_RUNS inputs or FUZZ_SECONDS, whichever ends first.
FUZZ_SECONDS ?= 30

.PHONY: all deps run test unit fuzz integration runtime-test clean build/node/unit-http
.SECONDARY:
all: build/warrend build/warren build/libwarren.a build/libwarren.so build/node/unit-http $(patsubst tests/apps/%.c,build/apps/%,$(wildcard tests/apps/*.c)) build/bench/null_app build/bench/channel

deps:
	@scripts/deps.sh

# V=1 shows the whole command lines.
Q        := $(if $(V),,@)

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -MMD -MP -c $< -o $@

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC-SAN  $<")
	$(Q)$(CC) $(CPPFLAGS) -O1 -g $(SAN) $(WARN) -MMD -MP -c $< -o $@

build/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(CXXFLAGS_W) $(CFLAGS) -MMD -MP -c $< -o $@

build/asan/%.o: %.cpp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX-SAN $<")
	$(Q)$(CXX) $(CXXFLAGS_W) -O1 -g $(SAN) -MMD -MP -c $< -o $@

build/fuzzobj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX-FUZ $<")
	$(Q)$(CLANGXX) $(CXXFLAGS_W) -Wno-unknown-warning-option -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=vptr,function -MMD -MP -c $< -o $@

build/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC-FUZZ $<")
	$(Q)$(CLANG) $(CPPFLAGS) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c $< -o $@

build/libwarren-core.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# The control API's command line (tools/warren.c): no library of ours.
build/warren: tools/warren.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC-LD   $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $<

build/warrend: build/obj/src/main.o build/libwarren-core.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# libwarren, the app side of the worker channel (include/warren.h): what
# language runtimes and C applications link.
LIBW_SRC := $(wildcard src/lib/*.c)
LIBW_PIC := $(LIBW_SRC:%.c=build/pic/%.o)

build/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC-PIC  $<")
	$(Q)$(CC) $(CPPFLAGS) -Iinclude $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

build/libwarren.a: $(LIBW_PIC)
	@rm -f $@
	$(Q)ar rcs $@ $^

build/libwarren.so: $(LIBW_PIC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libwarren.so.0 -o $@ $^
	@ln -sf libwarren.so build/libwarren.so.0

# Example and test applications on libwarren (tests/apps).
build/apps/%: tests/apps/%.c build/libwarren.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< build/libwarren.a

# The benchmark's worker that does nothing (bench/wsgi.sh's warren-null):
# built with everything else, so that it cannot rot between benchmark runs.
build/bench/%: bench/%.c build/libwarren.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< build/libwarren.a

# The same hello, linked to the shared libwarren (found next to it, as
# libwarren.so.0): the integration suite runs it to prove the .so works.
build/apps-so/hello: tests/apps/hello.c build/libwarren.so
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< build/libwarren.so -Wl,-rpath,'$$ORIGIN'

# ---- node: Warren's `unit-http` package (src/node), so Node.js apps written
# for Unit run unchanged: the JavaScript as it is, plus warren.node, the
# native addon over libwarren (statically linked: the package is the one
# directory). Node's own headers: /usr/include/node (nodejs or libnode-dev).
NODE_INCLUDE  ?= /usr/include/node
NODE_JS       := $(wildcard src/node/unit-http/*)
NODE_PKG      := $(NODE_JS:src/node/unit-http/%=build/node/unit-http/%) build/node/unit-http/warren.node

build/node/unit-http: $(NODE_PKG)

build/node/unit-http/%: src/node/unit-http/%
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

build/node/unit-http/warren.node: src/node/addon.c build/libwarren.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CPPFLAGS) -isystem $(NODE_INCLUDE) $(CFLAGS) $(WARN) -fPIC -shared \
	    -fvisibility=hidden -o $@ $< build/libwarren.a

# The integration suite runs this one: a sanitizer report in any process of
# the daemon fails the test that caused it.
build/asan/libwarren-core.a: $(ASAN_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

build/warrend-asan: build/asan/src/main.o build/asan/libwarren-core.a
	@$(if $(Q),echo "  LD-SAN  $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(LDLIBS)

build/unit/%: tests/unit/%.c build/asan/libwarren-core.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD-SAN  $@")
	$(Q)$(CC) $(CPPFLAGS) -O1 -g $(SAN) $(WARN) -o $@ $^ $(LDLIBS) -lcmocka

build/fuzzobj/libwarren-core.a: $(FUZZ_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

build/fuzz/%: tests/fuzz/%.c build/fuzzobj/libwarren-core.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD-FUZZ $@")
	$(Q)$(CLANG) $(CPPFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

run: deps build/warrend build/warren build/warren-python build/warren-php build/warren-perl build/warren-ruby build/warren-java build/demo/java/WEB-INF/classes/Hello.class build/node/unit-http
	@scripts/run.sh

# SpiderMonkey's GC heap hides its allocations from LeakSanitizer.
LSAN_ENV := LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $(LSAN_ENV) $$t; done

# One rule per target, so that make -j runs several at once; each prints
# its name and libFuzzer's last line together when it ends.
FUZZ_RUN := $(FUZZ_BIN:build/fuzz/%=fuzz-run-%)
fuzz: $(FUZZ_RUN)

fuzz-run-%: build/fuzz/%
	@name=$*; corpus=tests/fuzz/corpus/$${name#fuzz_}; \
	  mkdir -p build/fuzz/work-$$name; \
	  $(LSAN_ENV) $< -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build/fuzz/work-$$name \
	      $$( [ -d $$corpus ] && echo $$corpus ) 2>build/fuzz/$$name.log \
	    || { echo "== $< FAILED"; tail -50 build/fuzz/$$name.log; exit 1; }; \
	  echo "== $< ($(FUZZ_RUNS) runs at most): $$(tail -1 build/fuzz/$$name.log)"

APP_BIN  := $(patsubst tests/apps/%.c,build/apps/%,$(wildcard tests/apps/*.c))

# The integration suite's files run on TEST_JOBS pytest-xdist workers
# (--dist loadfile: each file whole on one worker, so module fixtures stay
# shared): 17 -> 10 minutes on 2 CPUs. TEST_JOBS=1 runs it in one process.
# The load of two workers brought out test races (tests that read a
# worker's log words before they arrived, or saw a process before it
# dropped privileges): a test must wait for what happens asynchronously.
TEST_JOBS ?= 2
INTEGRATION_JOBS = $(if $(filter-out 1,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadfile)

integration: build/warrend build/warren build/warrend-asan build/node/unit-http build/warren-java build/demo/java/WEB-INF/classes/Hello.class $(APP_BIN) build/apps-so/hello build/warren-php-asan build/warren-perl-asan build/warren-ruby-asan
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 WARREN_BIN=$(CURDIR)/build/warrend-asan \
	    WARREN_PHP_BIN=$(CURDIR)/build/warren-php-asan \
	    WARREN_PERL_BIN=$(CURDIR)/build/warren-perl-asan \
	    WARREN_RUBY_BIN=$(CURDIR)/build/warren-ruby-asan \
	    /usr/bin/python3 -m pytest -p no:cacheprovider -q --durations=15 $(INTEGRATION_JOBS) tests/integration

# ---- python runtime
# build/warren-python: the Python WSGI runtime, a worker program on libwarren
# (src/runtime/python). Only this program links libpython; warrend never does.
# Debian's CPython 3.11, named by path: another python3-config may come
# first on PATH (pyenv).
PYTHON_CONFIG ?= /usr/bin/python3-config
PY_RT_SRC     := $(wildcard src/runtime/python/*.c) $(wildcard src/runtime/common/*.c)
PY_RT_OBJ     := $(PY_RT_SRC:%.c=build/obj/%.o)
PY_RT_ASAN    := $(PY_RT_SRC:%.c=build/asan/%.o)
# -isystem: Python's headers are not ours to keep warning-free.
PY_INCLUDES    = $(patsubst -I%,-isystem %,$(shell $(PYTHON_CONFIG) --includes))
PY_LDFLAGS     = $(shell $(PYTHON_CONFIG) --embed --ldflags)
# sys.executable: the interpreter python3-config belongs to.
PY_BIN        := $(PYTHON_CONFIG:-config=)

$(PY_RT_OBJ) $(PY_RT_ASAN): CPPFLAGS += $(PY_INCLUDES) -DWPY_PYTHON_BIN='"$(PY_BIN)"'

# isolation "language_deps" of a python app: the stdlib and site directories
# of the interpreter the runtime embeds (src/sandbox/prepare.c).
PY_DEP_DIRS    = $(shell $(PY_BIN) -c 'import sysconfig, site; print(":".join(dict.fromkeys([sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"), *site.getsitepackages()])))')
$(foreach d,obj asan fuzzobj,build/$(d)/src/app/spec.o): CPPFLAGS += -DWR_PYTHON_DIRS='"$(PY_DEP_DIRS)"'

all: build/warren-python

# ---- asgi: the ASGI driver (src/runtime/python/asgi_driver.py) travels
# inside the program as a C string, so a sandboxed worker needs no file.
PY_ASGI_GEN   := build/gen/asgi_driver_py.c
$(PY_ASGI_GEN): src/runtime/python/asgi_driver.py scripts/embed_text.py
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(PY_BIN) scripts/embed_text.py wpy_asgi_driver_py $< > $@.tmp && mv $@.tmp $@
PY_RT_OBJ     += $(PY_ASGI_GEN:%.c=build/obj/%.o)
PY_RT_ASAN    += $(PY_ASGI_GEN:%.c=build/asan/%.o)
# ---- end asgi

build/warren-python: $(PY_RT_OBJ) build/libwarren.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(PY_LDFLAGS)

# The runtime's tests run this one: a sanitizer report fails the test.
build/warren-python-asan: $(PY_RT_ASAN) $(LIBW_SRC:%.c=build/asan/%.o)
	@$(if $(Q),echo "  LD-SAN  $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(PY_LDFLAGS)

.PHONY: runtime-test
runtime-test: build/warren-python build/warren-python-asan
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	    WARREN_PYTHON_BIN=$(CURDIR)/build/warren-python-asan \
	    /usr/bin/python3 -m pytest -p no:cacheprovider -q tests/runtime
# ---- end python runtime

# ---- php runtime
# build/warren-php: the PHP runtime, a worker program on libwarren
# (src/runtime/php) embedding Debian's libphp8.2 (package libphp8.2-embed;
# headers from php8.2-dev). Only this program links libphp.
PHP_CONFIG    ?= /usr/bin/php-config8.2
PHP_RT_SRC    := $(wildcard src/runtime/php/*.c) $(wildcard src/runtime/common/*.c)
PHP_RT_OBJ    := $(PHP_RT_SRC:%.c=build/obj/%.o)
PHP_RT_ASAN   := $(PHP_RT_SRC:%.c=build/asan/%.o) build/asan/src/runtime/php/asan_options.o
PHP_INCLUDES   = $(patsubst -I%,-isystem %,$(shell $(PHP_CONFIG) --includes))
PHP_LIBS      := -lphp8.2 -ljansson

$(PHP_RT_OBJ) $(PHP_RT_ASAN): CPPFLAGS += $(PHP_INCLUDES)

# isolation "language_deps" of a php app: the extension and ini directories.
# Debian's PHP reads time zones from the system's tzdata.
PHP_DEP_DIRS   = $(shell $(PHP_CONFIG) --extension-dir):/etc/php/8.2/embed:/etc/php/8.2/mods-available:/usr/share/zoneinfo
$(foreach d,obj asan fuzzobj,build/$(d)/src/app/spec.o): CPPFLAGS += -DWR_PHP_DIRS='"$(PHP_DEP_DIRS)"'

build/warren-php: $(PHP_RT_OBJ) build/libwarren.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(PHP_LIBS)

all: build/warren-php

# The integration suite runs this one as warren-php (WARREN_PHP_BIN): a
# sanitizer report in a PHP worker fails the test that caused it. Its
# ASan options are built in (asan_options.c): workers get no environment
# from warrend.
build/warren-php-asan: $(PHP_RT_ASAN) $(LIBW_SRC:%.c=build/asan/%.o)
	@$(if $(Q),echo "  LD-SAN  $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(PHP_LIBS)

build/asan/src/runtime/php/asan_options.o: tests/support/asan_options.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) -O1 -g $(WARN) -c $< -o $@

# The script resolution (no PHP in it) has a unit test of its own.
build/unit/test_php_resolve: build/asan/src/runtime/php/resolve.o
# The CGI names of header fields, shared by the runtimes.
build/unit/test_rt_cgi: build/asan/src/runtime/common/cgi.o
# ---- end php runtime

# ---- perl runtime
# build/warren-perl: the Perl PSGI runtime, a worker program on libwarren
# (src/runtime/perl) embedding Debian's libperl (package libperl-dev). Only
# this program links libperl.
PERL_BIN      ?= /usr/bin/perl
PL_RT_SRC     := $(wildcard src/runtime/perl/*.c) $(wildcard src/runtime/common/*.c)
PL_RT_OBJ     := $(PL_RT_SRC:%.c=build/obj/%.o)
PL_RT_ASAN    := $(PL_RT_SRC:%.c=build/asan/%.o) build/asan/src/runtime/perl/asan_options.o
# -isystem: Perl's headers are not ours to keep warning-free; its macros
# (dXSARGS, dSP ...) declare what a function may not use.
PL_CCOPTS      = $(patsubst -I%,-isystem %,$(filter -I% -D_REENTRANT -DDEBIAN -fwrapv -fno-strict-aliasing -D_LARGEFILE_SOURCE -D_FILE_OFFSET_BITS=64,$(shell $(PERL_BIN) -MExtUtils::Embed -e ccopts)))
PL_LIBS        = $(shell $(PERL_BIN) -MExtUtils::Embed -e ldopts)

$(PL_RT_OBJ) $(PL_RT_ASAN): CPPFLAGS += $(PL_CCOPTS)
$(filter build/%/src/runtime/perl/psgi.o build/%/src/runtime/perl/interp.o,$(PL_RT_OBJ) $(PL_RT_ASAN)): WARN += -Wno-shadow -Wno-unused-variable -Wno-unused-value

# isolation "language_deps" of a perl app: the directories of @INC that exist.
PL_DEP_DIRS    = $(shell $(PERL_BIN) -e 'print join ":", grep { -d } @INC')
$(foreach d,obj asan fuzzobj,build/$(d)/src/app/spec.o): CPPFLAGS += -DWR_PERL_DIRS='"$(PL_DEP_DIRS)"'

# The PSGI glue (src/runtime/perl/glue.pl) travels inside the program.
PL_GLUE_GEN   := build/gen/glue_pl.c
$(PL_GLUE_GEN): src/runtime/perl/glue.pl scripts/embed_text.py
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(PY_BIN) scripts/embed_text.py wpl_glue_pl $< > $@.tmp && mv $@.tmp $@
PL_RT_OBJ     += $(PL_GLUE_GEN:%.c=build/obj/%.o)
PL_RT_ASAN    += $(PL_GLUE_GEN:%.c=build/asan/%.o)

build/warren-perl: $(PL_RT_OBJ) build/libwarren.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(PL_LIBS)

all: build/warren-perl

# The integration suite runs this one as warren-perl (WARREN_PERL_BIN).
build/warren-perl-asan: $(PL_RT_ASAN) $(LIBW_SRC:%.c=build/asan/%.o)
	@$(if $(Q),echo "  LD-SAN  $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(PL_LIBS)

build/asan/src/runtime/perl/asan_options.o: tests/support/asan_options.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) -O1 -g $(WARN) -c $< -o $@
# ---- end perl runtime

# ---- ruby runtime
# build/warren-ruby: the Ruby Rack runtime, a worker program on libwarren
# (src/runtime/ruby) embedding Debian's libruby (package ruby-dev; Rack from
# ruby-rack). Only this program links libruby.
RUBY_BIN      ?= /usr/bin/ruby
RB_RT_SRC     := $(wildcard src/runtime/ruby/*.c) $(wildcard src/runtime/common/*.c)
RB_RT_OBJ     := $(RB_RT_SRC:%.c=build/obj/%.o)
RB_RT_ASAN    := $(RB_RT_SRC:%.c=build/asan/%.o) build/asan/src/runtime/ruby/asan_options.o
RB_PC          = ruby-$(shell $(RUBY_BIN) -e 'print RbConfig::CONFIG["ruby_version"][/^[0-9]+[.][0-9]+/]' 2>/dev/null)
# -isystem: Ruby's headers are not ours to keep warning-free.
RB_INCLUDES    = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(RB_PC)))
RB_LIBS        = $(shell pkg-config --libs $(RB_PC))

$(RB_RT_OBJ) $(RB_RT_ASAN): CPPFLAGS += $(RB_INCLUDES)

# isolation "language_deps" of a ruby app: Ruby's library and gem
# directories that exist.
RB_DEP_DIRS    = $(shell $(RUBY_BIN) -e 'print((Gem.path + $$LOAD_PATH).select { |d| File.directory?(d) }.uniq.join(":"))' 2>/dev/null)
$(foreach d,obj asan fuzzobj,build/$(d)/src/app/spec.o): CPPFLAGS += -DWR_RUBY_DIRS='"$(RB_DEP_DIRS)"'

# The Rack glue (src/runtime/ruby/glue.rb) travels inside the program.
RB_GLUE_GEN   := build/gen/glue_rb.c
$(RB_GLUE_GEN): src/runtime/ruby/glue.rb scripts/embed_text.py
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(PY_BIN) scripts/embed_text.py wrb_glue_rb $< > $@.tmp && mv $@.tmp $@
RB_RT_OBJ     += $(RB_GLUE_GEN:%.c=build/obj/%.o)
RB_RT_ASAN    += $(RB_GLUE_GEN:%.c=build/asan/%.o)

build/warren-ruby: $(RB_RT_OBJ) build/libwarren.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(RB_LIBS) -lpthread

all: build/warren-ruby

# The integration suite runs this one as warren-ruby (WARREN_RUBY_BIN).
build/warren-ruby-asan: $(RB_RT_ASAN) $(LIBW_SRC:%.c=build/asan/%.o)
	@$(if $(Q),echo "  LD-SAN  $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(RB_LIBS) -lpthread

build/asan/src/runtime/ruby/asan_options.o: tests/support/asan_options.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) -O1 -g $(WARN) -c $< -o $@
# ---- end ruby runtime

# ---- java runtime
# build/warren-java: the Java runtime (src/runtime/java), a worker program on
# libwarren embedding Debian's OpenJDK 17 (libjvm) through JNI, and
# build/java/warren.jar, Warren's servlet container (src/runtime/java/warren,
# against Debian's javax.servlet API). Only this program links libjvm. No
# sanitizer build: the JVM's own signal handling and memory tricks defeat
# ASan; its C is three small files over libwarren calls that are.
JAVA_HOME     ?= /usr/lib/jvm/java-17-openjdk-amd64
SERVLET_JAR   ?= /usr/share/java/servlet-api.jar
# Apache Jasper for JSP (libtomcat9-java, with the Eclipse compiler it
# depends on): on the class path when installed, ignored by the JVM if not.
JSP_JARS      ?= $(subst $(eval) ,:,$(addprefix /usr/share/java/,tomcat9-jasper.jar \
                 tomcat9-jasper-el.jar tomcat9-el-api.jar tomcat9-jsp-api.jar tomcat9-api.jar \
                 tomcat9-juli.jar tomcat9-util.jar tomcat9-util-scan.jar eclipse-jdt-core.jar))
# Tomcat's WebSocket (JSR 356), same package: the container subclasses its
# upgrade handler, frame parser and remote endpoint (warren/WsUpgrade.java),
# so they are on javac's class path too; at run time, like Jasper, they are
# used when installed (Tomcat's initializer makes the ServerContainer) and
# the webapps still run without them. tomcat9-api, -juli and -util, which
# they also need, are in JSP_JARS.
WS_JARS       ?= $(subst $(eval) ,:,$(addprefix /usr/share/java/,tomcat9-websocket.jar \
                 tomcat9-websocket-api.jar tomcat9-coyote.jar))
WS_BUILD_JARS  = $(WS_JARS):$(subst $(eval) ,:,$(addprefix /usr/share/java/,tomcat9-api.jar \
                 tomcat9-juli.jar tomcat9-util.jar))
JV_RT_SRC     := $(wildcard src/runtime/java/*.c) $(wildcard src/runtime/common/*.c)
JV_RT_OBJ     := $(JV_RT_SRC:%.c=build/obj/%.o) build/obj/src/runtime/java/jar.o
JV_JAVA       := $(wildcard src/runtime/java/warren/*.java)
JV_LIBDIR      = $(JAVA_HOME)/lib/server

# The container travels inside the program (jar.S): no path to find it by.
build/obj/src/runtime/java/jar.o: src/runtime/java/jar.S build/java/warren.jar
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AS      $<")
	$(Q)$(CC) -c -DWJV_JAR='"build/java/warren.jar"' $< -o $@

$(JV_RT_SRC:%.c=build/obj/%.o): CPPFLAGS += -isystem $(JAVA_HOME)/include -isystem $(JAVA_HOME)/include/linux \
                          -DWJV_SERVLET_JAR='"$(SERVLET_JAR)"' -DWJV_JSP_JARS='"$(JSP_JARS)"' \
                          -DWJV_WS_JARS='"$(WS_JARS)"'

# isolation "language_deps" of a java app: the JDK, what its absolute
# links reach (Debian keeps its configuration in /etc/java-17-openjdk and
# its CA store in /etc/ssl/certs/java) and Debian's jars.
JV_LINK_DIRS   = $(shell find $(JAVA_HOME)/ -path '*/man' -prune -o -type l -lname '/*' -printf '%l\n' 2>/dev/null | xargs -r -n1 dirname | sort -u | awk 'NR == 1 || index($$0, last "/") != 1 { print; last = $$0 }' | tr '\n' ':')
$(foreach d,obj asan fuzzobj,build/$(d)/src/app/spec.o): CPPFLAGS += -DWR_JAVA_DIRS='"$(realpath $(JAVA_HOME)):$(JV_LINK_DIRS)/usr/share/java"'

build/warren-java: $(JV_RT_OBJ) build/libwarren.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $(JV_RT_OBJ) build/libwarren.a -ljansson -L$(JV_LIBDIR) -ljvm -Wl,-rpath,$(JV_LIBDIR) -lpthread

build/java/warren.jar: $(JV_JAVA)
	@mkdir -p build/java/classes
	@$(if $(Q),echo "  JAVAC   $@")
	$(Q)rm -rf build/java/classes && mkdir -p build/java/classes
	$(Q)$(JAVA_HOME)/bin/javac --release 17 -nowarn -encoding UTF-8 -cp $(SERVLET_JAR):$(WS_BUILD_JARS) -d build/java/classes $(JV_JAVA)
	$(Q)$(JAVA_HOME)/bin/jar --create --file $@.tmp -C build/java/classes . && mv $@.tmp $@

all: build/warren-java

# make run's Java demo webapp (scripts/demo/java): a directory webapp.
build/demo/java/WEB-INF/classes/Hello.class: scripts/demo/java/Hello.java
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  JAVAC   $@")
	$(Q)$(JAVA_HOME)/bin/javac --release 17 -nowarn -cp $(SERVLET_JAR) -d $(dir $@) $<
# ---- end java runtime

# GET /status "modules": the version of each language the runtimes embed.
LANG_VERSIONS  = -DWR_PYTHON_VERSION='"$(shell $(PY_BIN) -c 'import platform; print(platform.python_version())' 2>/dev/null)"' \
                 -DWR_PHP_VERSION='"$(shell $(PHP_CONFIG) --version 2>/dev/null)"' \
                 -DWR_PERL_VERSION='"$(shell $(PERL_BIN) -e 'printf "%vd", $$^V' 2>/dev/null)"' \
                 -DWR_RUBY_VERSION='"$(shell $(RUBY_BIN) -e 'print RUBY_VERSION' 2>/dev/null)"' \
                 -DWR_JAVA_VERSION='"$(shell cat $(JAVA_HOME)/release 2>/dev/null | sed -n 's/^JAVA_VERSION="\(.*\)"/\1/p')"'
$(foreach d,obj asan fuzzobj,build/$(d)/src/control/modules.o): CPPFLAGS += $(LANG_VERSIONS)

# Each step builds what it needs on every CPU (BUILD_JOBS), then runs its
# tests; the steps themselves run one after the other.
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
test: deps
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) all
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) unit
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) fuzz
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) integration
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) runtime-test

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
