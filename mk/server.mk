# The OpenAI-compatible server (examples/server.c) and its tests.
#   make build/qwenmoe-server   the server
#   make test-server            unit tests of its JSON / tool-call code, then the HTTP tests
#                               (openai npm client, curl, 32 concurrent streams), ~1 minute
SERVER_HDRS = examples/server_json.h examples/server_tools.h

all: $(B)/qwenmoe-server

$(B)/qwenmoe-server: examples/server.c $(SERVER_HDRS) $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< -o $@ $(LDLIBS)
$(B)/test_toolparse: tests/server/test_toolparse.c $(SERVER_HDRS) tests/qmtest.h $(HDR) | $(B)
	$(CC) $(WARN) $(ARCH) $(CFLAGS) -I. $< -o $@ $(LDLIBS)
# the server under AddressSanitizer + UBSan (QM_SERVER_ASAN=1 bash tests/server/run.sh uses it)
$(B)/asan/qwenmoe-server: examples/server.c $(SERVER_HDRS) $(HDR) | $(B)
	$(CC) $(WARN) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -I. $< -o $@ $(LDLIBS)

test-server: $(B)/qwenmoe-server $(B)/test_toolparse $(B)/qwenmoe-generate $(B)/qwenmoe-tokenize $(B)/models/tiny-tok.gguf
	@bash tests/server/run.sh $(B)

test-server-asan: $(B)/asan/qwenmoe-server $(B)/test_toolparse $(B)/qwenmoe-generate $(B)/qwenmoe-tokenize $(B)/models/tiny-tok.gguf
	@QM_SERVER_BIN=$(B)/asan/qwenmoe-server bash tests/server/run.sh $(B)

.PHONY: test-server test-server-asan
