/*
 * Configuration validation: a table of invalid configurations, each with the
 * exact JSON pointer of the bad value and a fragment of the detail, and a
 * table of valid ones (Unit configurations must stay valid).
 *
 * Configs are written with ' for " to stay readable; no key here holds '.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"

typedef struct {
    const char *name;
    const char *json;
    const char *path;       /* expected error path */
    const char *detail;     /* fragment of the expected detail */
    const char *suggest;    /* fragment of the suggestion, or NULL for none */
} bad_case_t;

typedef struct {
    const char *name;
    const char *json;
} good_case_t;

/* Shorthands for configs with one listener or one application. */
#define L80(body)   "{'listeners': {'*:80': " body "}, 'routes': []}"
#define ACT(act)    "{'routes': [{'action': " act "}]}"
#define MATCH(m)    "{'routes': [{'match': " m ", 'action': {'return': 200}}]}"
#define APP(body)   "{'applications': {'a': " body "}}"
#define ISO(iso)    APP("{'type': 'external', 'executable': '/bin/true', " \
                        "'isolation': " iso "}")
#define UPS(servers) "{'upstreams': {'b': {'servers': " servers "}}}"
#define HTTP(h)     "{'settings': {'http': " h "}}"

static const bad_case_t bad[] = {
    /* ---- top level */
    { "top-typo", "{'listenrs': {}}", "/listenrs", "Unknown key \"listenrs\".",
      "Did you mean \"listeners\"?" },
    { "top-unknown-far", "{'zzzzzzzz': 1}", "/zzzzzzzz", "Unknown key", NULL },
    { "top-listeners-string", "{'listeners': 'x'}", "/listeners",
      "The \"listeners\" value must be an object.", NULL },
    { "top-routes-number", "{'routes': 5}", "/routes",
      "must be an object or an array", NULL },
    { "top-apps-array", "{'applications': []}", "/applications",
      "must be an object", NULL },
    { "top-settings-typo", "{'settings': {'htp': {}}}", "/settings/htp",
      "Unknown key \"htp\"", "\"http\"" },

    /* ---- listeners */
    { "listener-missing-app", "{'listeners': {'*:80': {'pass': "
      "'applications/blog'}}}", "/listeners/*:80/pass",
      "Listener \"*:80\" passes requests to \"applications/blog\" which does "
      "not exist.", NULL },
    { "listener-port-big", "{'listeners': {'*:99999': {'pass': 'routes'}}, "
      "'routes': []}", "/listeners/*:99999", "port must be a number", NULL },
    { "listener-port-zero", "{'listeners': {'*:0': {'pass': 'routes'}}}",
      "/listeners/*:0", "between 1 and 65535", NULL },
    { "listener-bad-ipv4", "{'listeners': {'999.1.1.1:80': {'pass': 'routes'}}}",
      "/listeners/999.1.1.1:80", "is invalid", NULL },
    { "listener-hostname", "{'listeners': {'localhost:80': {'pass': 'routes'}}}",
      "/listeners/localhost:80", "an IPv4 address", NULL },
    { "listener-v6-unclosed", "{'listeners': {'[::1:80': {'pass': 'routes'}}}",
      "/listeners/[::1:80", "closing", NULL },
    { "listener-v6-bad", "{'listeners': {'[zz::]:80': {'pass': 'routes'}}}",
      "/listeners/[zz::]:80", "IPv6 address is invalid", NULL },
    { "listener-v6-nobrackets", "{'listeners': {'::1:80': {'pass': 'routes'}}}",
      "/listeners/::1:80", "brackets", NULL },
    { "listener-no-port", "{'listeners': {'127.0.0.1': {'pass': 'routes'}}}",
      "/listeners/127.0.0.1", "port is missing", NULL },
    { "listener-unix-relative", "{'listeners': {'unix:x.sock': {'pass': 'routes'}}}",
      "/listeners/unix:x.sock", "must be absolute", NULL },
    { "listener-not-object", "{'listeners': {'*:80': 'routes'}}",
      "/listeners/*:80", "must be an object", NULL },
    { "listener-no-pass", L80("{}"), "/listeners/*:80",
      "Required key \"pass\" is missing.", NULL },
    { "listener-backlog-zero", L80("{'pass': 'routes', 'backlog': 0}"),
      "/listeners/*:80/backlog",
      "The \"backlog\" value must be an integer between 1 and 2147483647.", NULL },
    { "listener-backlog-string", L80("{'pass': 'routes', 'backlog': 'x'}"),
      "/listeners/*:80/backlog", "must be an integer.", NULL },
    { "listener-pass-number", L80("{'pass': 5}"), "/listeners/*:80/pass",
      "must be a string", NULL },
    { "listener-pass-empty", L80("{'pass': ''}"), "/listeners/*:80/pass",
      "must not be empty", NULL },
    { "listener-pass-garbage", L80("{'pass': 'foo'}"), "/listeners/*:80/pass",
      "\"foo\" is invalid", NULL },
    { "listener-pass-too-deep", L80("{'pass': 'applications/a/b/c'}"),
      "/listeners/*:80/pass", "is invalid", NULL },
    { "listener-pass-missing-route", L80("{'pass': 'routes/main'}"),
      "/listeners/*:80/pass", "\"routes/main\" which does not exist", NULL },
    { "listener-pass-routes-object", "{'listeners': {'*:80': {'pass': 'routes'}},"
      " 'routes': {'main': []}}", "/listeners/*:80/pass",
      "\"routes\" which does not exist", NULL },
    { "listener-pass-upstream", L80("{'pass': 'upstreams/u'}"),
      "/listeners/*:80/pass", "\"upstreams/u\" which does not exist", NULL },
    { "listener-pass-no-target", "{'listeners': {'*:80': {'pass': "
      "'applications/a/admin'}}, 'applications': {'a': {'type': 'external', "
      "'executable': '/x'}}}", "/listeners/*:80/pass", "no such target", NULL },
    { "listener-pass-untargeted", "{'listeners': {'*:80': {'pass': "
      "'applications/py'}}, 'applications': {'py': {'type': 'python', "
      "'targets': {'t': {'module': 'm'}}}}}", "/listeners/*:80/pass",
      "one must be named", NULL },
    { "listener-unknown", L80("{'pass': 'routes', 'bogus': 1}"),
      "/listeners/*:80/bogus", "Unknown key \"bogus\".", NULL },
    { "tls-no-cert", L80("{'pass': 'routes', 'tls': {}}"),
      "/listeners/*:80/tls", "Required key \"certificate\"", NULL },
    { "tls-unknown-cert", L80("{'pass': 'routes', 'tls': {'certificate': 'x'}}"),
      "/listeners/*:80/tls/certificate", "Certificate \"x\" is not found.", NULL },
    { "tls-empty-certs", L80("{'pass': 'routes', 'tls': {'certificate': []}}"),
      "/listeners/*:80/tls/certificate", "must not be empty", NULL },
    { "tls-session-timeout", L80("{'pass': 'routes', 'tls': {'certificate': "
      "'x', 'session': {'timeout': -1}}}"),
      "/listeners/*:80/tls/session/timeout", "greater than or equal to 0", NULL },
    { "forwarded-no-source", L80("{'pass': 'routes', 'forwarded': "
      "{'client_ip': 'X-Forwarded-For'}}"), "/listeners/*:80/forwarded",
      "Required key \"source\"", NULL },
    { "forwarded-neither", L80("{'pass': 'routes', 'forwarded': "
      "{'source': '10.0.0.0/8'}}"), "/listeners/*:80/forwarded",
      "\"client_ip\" or \"protocol\"", NULL },
    { "forwarded-bad-source", L80("{'pass': 'routes', 'forwarded': "
      "{'protocol': 'X-Proto', 'source': ['10.0.0.1', 'bogus']}}"),
      "/listeners/*:80/forwarded/source/1", "address pattern \"bogus\"", NULL },
    { "forwarded-recursive", L80("{'pass': 'routes', 'forwarded': "
      "{'protocol': 'X', 'source': '*', 'recursive': 'yes'}}"),
      "/listeners/*:80/forwarded/recursive", "must be a boolean", NULL },

    /* ---- routes, steps, actions */
    { "step-not-object", "{'routes': [5]}", "/routes/0", "must be an object", NULL },
    { "step-no-action", "{'routes': [{'match': {}}]}", "/routes/0",
      "Required key \"action\"", NULL },
    { "step-unknown", "{'routes': [{'action': {'return': 1}, 'macth': {}}]}",
      "/routes/0/macth", "Unknown key", "\"match\"" },
    { "action-empty", ACT("{}"), "/routes/0/action", "must have one of", NULL },
    { "action-two", ACT("{'return': 200, 'proxy': 'http://127.0.0.1:1'}"),
      "/routes/0/action", "both \"return\" and \"proxy\"", NULL },
    { "return-range", ACT("{'return': 1000}"), "/routes/0/action/return",
      "between 0 and 999", NULL },
    { "return-string", ACT("{'return': '200'}"), "/routes/0/action/return",
      "must be an integer", NULL },
    { "return-with-index", ACT("{'return': 200, 'index': 'x'}"),
      "/routes/0/action/index", "not allowed with \"return\"", NULL },
    { "location-crlf", ACT("{'return': 301, 'location': 'a\\r\\nSet-Cookie: x'}"),
      "/routes/0/action/location", "CR or LF", NULL },
    { "location-number", ACT("{'return': 301, 'location': 5}"),
      "/routes/0/action/location", "must be a string", NULL },
    { "metrics-format", ACT("{'metrics': 'xml'}"), "/routes/0/action/metrics",
      "must be \"prometheus\" or \"json\", not \"xml\"", NULL },
    { "metrics-bool", ACT("{'metrics': true}"), "/routes/0/action/metrics",
      "must be a string", NULL },
    { "metrics-with-return", ACT("{'metrics': 'json', 'return': 200}"),
      "/routes/0/action", "both \"return\" and \"metrics\"", NULL },
    { "metrics-with-location", ACT("{'metrics': 'json', 'location': '/x'}"),
      "/routes/0/action/location", "not allowed with \"metrics\"", NULL },
    { "proxy-scheme", ACT("{'proxy': 'ftp://x'}"), "/routes/0/action/proxy",
      "must start with \"http://\"", NULL },
    { "proxy-hostname", ACT("{'proxy': 'http://example.com:80'}"),
      "/routes/0/action/proxy", "is invalid", NULL },
    { "proxy-no-port", ACT("{'proxy': 'http://127.0.0.1'}"),
      "/routes/0/action/proxy", "port is missing", NULL },
    { "proxy-unix-relative", ACT("{'proxy': 'http://unix:x.sock'}"),
      "/routes/0/action/proxy", "must be absolute", NULL },
    { "share-number", ACT("{'share': 5}"), "/routes/0/action/share",
      "must be a string or an array", NULL },
    { "share-item", ACT("{'share': ['/a', 5]}"), "/routes/0/action/share/1",
      "Each value in the \"share\" array must be a string.", NULL },
    { "fallback-empty", ACT("{'share': '/a', 'fallback': {}}"),
      "/routes/0/action/fallback", "must have one of", NULL },
    { "fallback-nested", ACT("{'share': '/a', 'fallback': {'share': '/b', "
      "'fallback': {'return': 'x'}}}"),
      "/routes/0/action/fallback/fallback/return", "must be an integer", NULL },
    { "fallback-with-pass", "{'routes': [{'action': {'pass': 'routes', "
      "'fallback': {'return': 404}}}]}", "/routes/0/action/fallback",
      "not allowed with \"pass\"", NULL },
    { "follow-symlinks", ACT("{'share': '/a', 'follow_symlinks': 1}"),
      "/routes/0/action/follow_symlinks", "must be a boolean", NULL },
    { "types-empty-regex", ACT("{'share': '/a', 'types': ['text/*', '~']}"),
      "/routes/0/action/types/1", "regular expression must not be empty", NULL },
    { "resp-header-number", ACT("{'return': 200, 'response_headers': "
      "{'X-A': 5}}"), "/routes/0/action/response_headers/X-A",
      "must be a string or null", NULL },
    { "resp-header-name", ACT("{'return': 200, 'response_headers': "
      "{'Bad Name': 'x'}}"), "/routes/0/action/response_headers/Bad Name",
      "not allowed in a header name", NULL },
    { "resp-header-lf", ACT("{'return': 200, 'response_headers': "
      "{'X-A': 'a\\nb'}}"), "/routes/0/action/response_headers/X-A",
      "CR or LF", NULL },
    { "rewrite-number", ACT("{'return': 200, 'rewrite': 5}"),
      "/routes/0/action/rewrite", "must be a string", NULL },
    { "action-missing-app", ACT("{'pass': 'applications/nope'}"),
      "/routes/0/action/pass",
      "The route action passes requests to \"applications/nope\"", NULL },
    { "action-typo", ACT("{'retrun': 200}"), "/routes/0/action/retrun",
      "Unknown key \"retrun\".", "Did you mean \"return\"?" },
    { "action-unknown", ACT("{'return': 200, 'bogus': 1}"),
      "/routes/0/action/bogus", "Unknown key", NULL },
    { "named-step-no-action", "{'routes': {'main': [{'match': {'uri': '/x'}}]}}",
      "/routes/main/0", "Required key \"action\"", NULL },
    { "named-route-object", "{'routes': {'main': {}}}", "/routes/main",
      "must be an array", NULL },

    /* ---- match */
    { "match-typo", MATCH("{'urii': '/x'}"), "/routes/0/match/urii",
      "Unknown key \"urii\".", "Did you mean \"uri\"?" },
    { "match-method-number", MATCH("{'method': 5}"), "/routes/0/match/method",
      "must be a string or an array", NULL },
    { "match-uri-item", MATCH("{'uri': ['/a', 5]}"), "/routes/0/match/uri/1",
      "Each value in the \"uri\" array", NULL },
    { "match-uri-encoding", MATCH("{'uri': '/a%zz'}"), "/routes/0/match/uri",
      "invalid percent-encoding", NULL },
    { "match-query-encoding", MATCH("{'query': ['a=1', 'b=%2']}"),
      "/routes/0/match/query/1", "invalid percent-encoding", NULL },
    { "match-scheme", MATCH("{'scheme': 'ftp'}"), "/routes/0/match/scheme",
      "\"http\" or \"https\"", NULL },
    { "match-scheme-array", MATCH("{'scheme': ['http']}"),
      "/routes/0/match/scheme", "must be a string", NULL },
    { "match-source-5", MATCH("{'source': '1.2.3.4.5'}"),
      "/routes/0/match/source", "address pattern \"1.2.3.4.5\" is invalid", NULL },
    { "match-source-prefix", MATCH("{'source': ['10.0.0.0/33']}"),
      "/routes/0/match/source/0", "is invalid", NULL },
    { "match-dest-range", MATCH("{'destination': '10.0.0.5-10.0.0.1'}"),
      "/routes/0/match/destination", "is invalid", NULL },
    { "match-dest-port", MATCH("{'destination': ':0'}"),
      "/routes/0/match/destination", "is invalid", NULL },
    { "match-dest-ports", MATCH("{'destination': '*:90-80'}"),
      "/routes/0/match/destination", "is invalid", NULL },
    { "match-source-empty", MATCH("{'source': []}"), "/routes/0/match/source",
      "must not be empty", NULL },
    { "match-headers-string", MATCH("{'headers': 'x'}"),
      "/routes/0/match/headers", "must be an object or an array", NULL },
    { "match-headers-item", MATCH("{'headers': [{'Host': 5}]}"),
      "/routes/0/match/headers/0/Host", "must be a string or an array", NULL },
    { "match-arguments-slash", MATCH("{'arguments': {'a/b': 5}}"),
      "/routes/0/match/arguments/a~1b", "must be a string", NULL },
    { "match-cookies-tilde", MATCH("{'cookies': {'x~y': 1}}"),
      "/routes/0/match/cookies/x~0y", "must be a string", NULL },
    { "match-host-regex", MATCH("{'host': '!~'}"), "/routes/0/match/host",
      "regular expression must not be empty", NULL },
    { "match-if-number", MATCH("{'if': 5}"), "/routes/0/match/if",
      "must be a string", NULL },

    /* ---- applications */
    { "app-no-type", APP("{'executable': '/bin/true'}"), "/applications/a",
      "Required key \"type\" is missing.", NULL },
    { "app-cobol", APP("{'type': 'cobol'}"), "/applications/a/type",
      "\"cobol\" is not supported", NULL },
    { "app-bad-version", APP("{'type': 'python x', 'module': 'm'}"),
      "/applications/a/type", "is not supported", NULL },
    { "app-type-number", APP("{'type': 5}"), "/applications/a/type",
      "must be a string", NULL },
    { "app-not-object", APP("'x'"), "/applications/a", "must be an object", NULL },
    { "external-no-exe", APP("{'type': 'external'}"), "/applications/a",
      "Required key \"executable\"", NULL },
    { "external-protocol", APP("{'type': 'external', 'executable': '/x', "
      "'protocol': 'fcgi'}"), "/applications/a/protocol",
      "\"warren\" or \"http\"", NULL },
    { "external-args-item", APP("{'type': 'external', 'executable': '/x', "
      "'arguments': ['a', 1]}"), "/applications/a/arguments/1",
      "must be a string", NULL },
    { "external-python-key", APP("{'type': 'external', 'executable': '/x', "
      "'module': 'm'}"), "/applications/a/module", "Unknown key", NULL },
    { "python-no-module", APP("{'type': 'python', 'path': '/tmp'}"),
      "/applications/a", "Required key \"module\"", NULL },
    { "python-module-and-targets", APP("{'type': 'python 3', 'module': 'm', "
      "'targets': {'t': {'module': 'n'}}}"), "/applications/a/module",
      "not allowed with \"targets\"", NULL },
    { "python-prefix-relative", APP("{'type': 'python', 'module': 'm', "
      "'prefix': 'x'}"), "/applications/a/prefix", "must start with \"/\"", NULL },
    { "python-prefix-slash", APP("{'type': 'python', 'module': 'm', "
      "'prefix': '/x/'}"), "/applications/a/prefix", "not end with", NULL },
    { "python-protocol", APP("{'type': 'python', 'module': 'm', "
      "'protocol': 'cgi'}"), "/applications/a/protocol", "\"wsgi\" or \"asgi\"",
      NULL },
    { "python-threads", APP("{'type': 'python', 'module': 'm', 'threads': 0}"),
      "/applications/a/threads", "between 1 and", NULL },
    { "python-stack", APP("{'type': 'python', 'module': 'm', "
      "'thread_stack_size': 100}"), "/applications/a/thread_stack_size",
      "between 16384 and", NULL },
    { "python-stack-page", APP("{'type': 'python', 'module': 'm', "
      "'threads': 4, 'thread_stack_size': 1050000}"),
      "/applications/a/thread_stack_size", "multiple of the page size", NULL },
    { "java-stack-page", APP("{'type': 'java', 'webapp': 'w', "
      "'thread_stack_size': 20000}"), "/applications/a/thread_stack_size",
      "multiple of the page size", NULL },
    { "python-target-no-module", APP("{'type': 'python', 'targets': "
      "{'t': {'callable': 'app'}}}"), "/applications/a/targets/t",
      "Required key \"module\"", NULL },
    { "python-targets-empty", APP("{'type': 'python', 'targets': {}}"),
      "/applications/a/targets", "between 1 and 254", NULL },
    { "php-no-root", APP("{'type': 'php'}"), "/applications/a",
      "Required key \"root\"", NULL },
    { "php-option-number", APP("{'type': 'php', 'root': '/w', 'options': "
      "{'admin': {'memory_limit': 1}}}"),
      "/applications/a/options/admin/memory_limit", "must be a string", NULL },
    { "perl-no-script", APP("{'type': 'perl'}"), "/applications/a",
      "Required key \"script\"", NULL },
    { "ruby-threads", APP("{'type': 'ruby', 'script': 's', 'threads': -1}"),
      "/applications/a/threads", "between 1 and", NULL },
    { "java-classpath", APP("{'type': 'java', 'webapp': 'w', 'classpath': 5}"),
      "/applications/a/classpath", "must be an array", NULL },
    { "wasm-no-free", APP("{'type': 'wasm', 'module': 'm', 'request_handler': "
      "'r', 'malloc_handler': 'm'}"), "/applications/a",
      "Required key \"free_handler\"", NULL },
    { "wasi-access", APP("{'type': 'wasm-wasi-component', 'component': 'c', "
      "'access': {'filesystem': '/'}}"), "/applications/a/access/filesystem",
      "must be an array", NULL },
    { "processes-negative", APP("{'type': 'external', 'executable': '/x', "
      "'processes': -1}"), "/applications/a/processes",
      "The \"processes\" value must be an integer between 0 and 2147483647.",
      NULL },
    { "pipeline-over-max", APP("{'type': 'external', 'executable': '/x', "
      "'pipeline': 8}"), "/applications/a/pipeline",
      "The \"pipeline\" value must be an integer between 0 and 7.", NULL },
    { "scheduling-unknown", APP("{'type': 'external', 'executable': '/x', "
      "'scheduling': 'idle'}"), "/applications/a/scheduling",
      "must be \"batch\" or \"normal\"", NULL },
    { "scheduling-not-string", APP("{'type': 'external', 'executable': '/x', "
      "'scheduling': 1}"), "/applications/a/scheduling", "must be a string", NULL },
    { "pipeline-string", APP("{'type': 'external', 'executable': '/x', "
      "'pipeline': '2'}"), "/applications/a/pipeline", "must be an integer",
      NULL },
    { "processes-spare-over-max", APP("{'type': 'external', 'executable': '/x', "
      "'processes': {'max': 2, 'spare': 5}}"), "/applications/a/processes/spare",
      "must not be greater than \"max\" (2)", NULL },
    { "processes-spare-default-max", APP("{'type': 'external', 'executable': "
      "'/x', 'processes': {'spare': 2}}"), "/applications/a/processes/spare",
      "(1)", NULL },
    { "processes-max-zero", APP("{'type': 'external', 'executable': '/x', "
      "'processes': {'max': 0}}"), "/applications/a/processes/max",
      "between 1 and", NULL },
    { "processes-unknown", APP("{'type': 'external', 'executable': '/x', "
      "'processes': {'max': 2, 'bogus': 1}}"), "/applications/a/processes/bogus",
      "Unknown key", NULL },
    { "limits-timeout", APP("{'type': 'external', 'executable': '/x', "
      "'limits': {'timeout': 'x'}}"), "/applications/a/limits/timeout",
      "must be an integer", NULL },
    { "environment-value", APP("{'type': 'external', 'executable': '/x', "
      "'environment': {'A': 1}}"), "/applications/a/environment/A",
      "must be a string", NULL },
    { "environment-name", APP("{'type': 'external', 'executable': '/x', "
      "'environment': {'A=B': 'x'}}"), "/applications/a/environment/A=B",
      "contain \"=\"", NULL },
    { "user-number", APP("{'type': 'external', 'executable': '/x', 'user': 5}"),
      "/applications/a/user", "must be a string", NULL },
    { "app-typo", APP("{'type': 'external', 'executable': '/x', 'prcesses': 1}"),
      "/applications/a/prcesses", "Unknown key", "\"processes\"" },

    /* ---- isolation */
    { "ns-unknown", ISO("{'namespaces': {'bogus': true}}"),
      "/applications/a/isolation/namespaces/bogus", "Unknown key", NULL },
    { "ns-not-bool", ISO("{'namespaces': {'credential': 'yes'}}"),
      "/applications/a/isolation/namespaces/credential", "must be a boolean",
      NULL },
    { "uidmap-no-size", ISO("{'uidmap': [{'container': 0, 'host': 1000}]}"),
      "/applications/a/isolation/uidmap/0", "Required key \"size\"", NULL },
    { "gidmap-size-zero", ISO("{'gidmap': [{'container': 0, 'host': 1000, "
      "'size': 0}]}"), "/applications/a/isolation/gidmap/0/size",
      "between 1 and", NULL },
    { "uidmap-host-negative", ISO("{'uidmap': [{'container': 0, 'host': -1, "
      "'size': 1}]}"), "/applications/a/isolation/uidmap/0/host",
      "between 0 and", NULL },
    { "rootfs-number", ISO("{'rootfs': 5}"), "/applications/a/isolation/rootfs",
      "must be a string", NULL },
    { "rootfs-relative", ISO("{'rootfs': 'srv/root'}"),
      "/applications/a/isolation/rootfs", "must be an absolute path", NULL },
    { "rootfs-slash", ISO("{'rootfs': '/'}"), "/applications/a/isolation/rootfs",
      "must not be \"/\"", NULL },
    { "rootfs-dotdot", ISO("{'rootfs': '/srv/../etc'}"),
      "/applications/a/isolation/rootfs", "\"..\"", NULL },
    { "rootfs-no-mount-ns", ISO("{'rootfs': '/srv/r', 'namespaces': "
      "{'credential': true}}"), "/applications/a/isolation/rootfs",
      "needs the \"mount\" namespace", NULL },
    { "mounts-relative", ISO("{'mounts': [{'source': 'rel', 'destination': "
      "'/x'}]}"), "/applications/a/isolation/mounts/0/source",
      "absolute path", NULL },
    { "mounts-escape", ISO("{'mounts': [{'source': '/a', 'destination': "
      "'/x/../../etc'}]}"), "/applications/a/isolation/mounts/0/destination",
      "\"..\"", NULL },
    { "mounts-no-destination", ISO("{'mounts': [{'source': '/a'}]}"),
      "/applications/a/isolation/mounts/0", "Required key \"destination\"", NULL },
    { "rlimits-negative", ISO("{'rlimits': {'nofile': -1}}"),
      "/applications/a/isolation/rlimits/nofile", "greater than or equal to 0",
      NULL },
    { "rlimits-unknown", ISO("{'rlimits': {'nofiles': 10}}"),
      "/applications/a/isolation/rlimits/nofiles", "Unknown key", "\"nofile\"" },
    { "caps-empty", ISO("{'capabilities': ['']}"),
      "/applications/a/isolation/capabilities/0", "must not be empty", NULL },
    { "seccomp-number", ISO("{'seccomp': 5}"), "/applications/a/isolation/seccomp",
      "must be a string or a boolean", NULL },
    { "automount-unknown", ISO("{'automount': {'bogus': true}}"),
      "/applications/a/isolation/automount/bogus", "Unknown key", NULL },
    { "cgroup-no-path", ISO("{'cgroup': {}}"), "/applications/a/isolation/cgroup",
      "Required key \"path\"", NULL },
    { "isolation-unknown", ISO("{'bogus': true}"),
      "/applications/a/isolation/bogus", "Unknown key", NULL },

    /* ---- upstreams */
    { "upstream-no-servers", "{'upstreams': {'b': {}}}", "/upstreams/b",
      "Required key \"servers\"", NULL },
    { "upstream-hostname", UPS("{'nothost': {}}"), "/upstreams/b/servers/nothost",
      "upstream server address \"nothost\" is invalid", NULL },
    { "upstream-wildcard", UPS("{'*:80': {}}"), "/upstreams/b/servers/*:80",
      "wildcard", NULL },
    { "upstream-unix", UPS("{'unix:/s': {}}"), "/upstreams/b/servers/unix:~1s",
      "not allowed here", NULL },
    { "weight-negative", UPS("{'127.0.0.1:80': {'weight': -1}}"),
      "/upstreams/b/servers/127.0.0.1:80/weight", "greater than 0", NULL },
    { "weight-zero", UPS("{'127.0.0.1:80': {'weight': 0}}"),
      "/upstreams/b/servers/127.0.0.1:80/weight", "at most 1000000", NULL },
    { "weight-big", UPS("{'[::1]:80': {'weight': 1000001}}"),
      "/upstreams/b/servers/[::1]:80/weight", "greater than 0", NULL },
    { "weight-string", UPS("{'127.0.0.1:80': {'weight': 'x'}}"),
      "/upstreams/b/servers/127.0.0.1:80/weight", "must be a number", NULL },
    { "server-unknown", UPS("{'127.0.0.1:80': {'bogus': 1}}"),
      "/upstreams/b/servers/127.0.0.1:80/bogus", "Unknown key", NULL },

    /* ---- settings */
    { "http-unknown", HTTP("{'bogus': 1}"), "/settings/http/bogus",
      "Unknown key", NULL },
    { "http-typo", HTTP("{'idle_timout': 1}"), "/settings/http/idle_timout",
      "Unknown key", "\"idle_timeout\"" },
    { "idle-timeout-string", HTTP("{'idle_timeout': 'x'}"),
      "/settings/http/idle_timeout", "must be an integer", NULL },
    { "idle-timeout-negative", HTTP("{'idle_timeout': -1}"),
      "/settings/http/idle_timeout", "between 0 and 2147483", NULL },
    { "max-body-string", HTTP("{'max_body_size': '1M'}"),
      "/settings/http/max_body_size", "must be an integer", NULL },
    { "temp-path-relative", HTTP("{'body_temp_path': 'tmp'}"),
      "/settings/http/body_temp_path", "must be an absolute path", NULL },
    { "temp-path-number", HTTP("{'body_temp_path': 1}"),
      "/settings/http/body_temp_path", "must be a string", NULL },
    { "header-buffer-small", HTTP("{'large_header_buffer_size': 10}"),
      "/settings/http/large_header_buffer_size", "between 1024 and", NULL },
    { "header-buffers-zero", HTTP("{'large_header_buffers': 0}"),
      "/settings/http/large_header_buffers", "between 1 and", NULL },
    { "discard-not-bool", HTTP("{'discard_unsafe_fields': 'yes'}"),
      "/settings/http/discard_unsafe_fields", "must be a boolean", NULL },
    { "mime-value", HTTP("{'static': {'mime_types': {'text/x-w': 5}}}"),
      "/settings/http/static/mime_types/text~1x-w", "must be a string or an array",
      NULL },
    { "websocket-frame", HTTP("{'websocket': {'max_frame_size': 0}}"),
      "/settings/http/websocket/max_frame_size", "between 1 and", NULL },
    { "listen-threads", "{'settings': {'listen_threads': 2000}}",
      "/settings/listen_threads", "between 0 and 1024", NULL },
    { "http2-type", "{'settings': {'http': {'http2': 'on'}}}",
      "/settings/http/http2", "must be a boolean", NULL },
    { "http2-streams-zero", "{'settings': {'http': {'http2_max_concurrent_streams': 0}}}",
      "/settings/http/http2_max_concurrent_streams", "between 1 and 1024", NULL },
    { "http2-streams-big", "{'settings': {'http': {'http2_max_concurrent_streams': 1025}}}",
      "/settings/http/http2_max_concurrent_streams", "between 1 and 1024", NULL },
    { "js-module", "{'settings': {'js_module': 5}}", "/settings/js_module",
      "must be a string or an array", NULL },
    { "js-module-not-stored", "{'settings': {'js_module': ['nosuch']}}",
      "/settings/js_module/0", "JS module \"nosuch\" is not found", NULL },

    /* ---- access_log */
    { "access-log-number", "{'access_log': 5}", "/access_log",
      "must be a string or an object", NULL },
    { "access-log-relative", "{'access_log': 'log/access.log'}", "/access_log",
      "must be an absolute path", NULL },
    { "access-log-unknown", "{'access_log': {'path': '/x', 'bogus': 1}}",
      "/access_log/bogus", "Unknown key", NULL },
    { "access-log-path-number", "{'access_log': {'path': 5}}", "/access_log/path",
      "must be a string", NULL },
    { "access-log-no-path", "{'access_log': {'format': 'x'}}", "/access_log",
      "Required key \"path\"", NULL },
    { "access-log-format", "{'access_log': {'path': '/x', 'format': 5}}",
      "/access_log/format", "must be a string or an object", NULL },
};

/* A realistic configuration using most of the schema. */
static const char full_config[] =
    "{"
    " 'listeners': {"
    "  '*:8080': {'pass': 'routes/main', 'backlog': 1024},"
    "  '127.0.0.1:8081': {'pass': 'applications/api/admin'},"
    "  '[::1]:8082': {'pass': 'upstreams/pool',"
    "    'forwarded': {'client_ip': 'X-Forwarded-For', 'protocol': 'X-Forwarded-Proto',"
    "                  'source': ['10.0.0.0/8', '[fd00::]:80', '!10.1.1.1'],"
    "                  'recursive': true}},"
    "  'unix:/run/warren/app.sock': {'pass': 'applications/blog'}"
    " },"
    " 'routes': {"
    "  'main': ["
    "   {'match': {'host': ['example.com', '*.example.com'], 'uri': '~^/v[0-9]+/',"
    "              'method': ['GET', 'HEAD'], 'scheme': 'https',"
    "              'headers': [{'Accept': '*json*'}, {'X-Debug': '!'}],"
    "              'arguments': {'page': ['1', '2'], 'q%20x': '*'},"
    "              'cookies': {'session': '*'}, 'query': 'a=%2F*',"
    "              'source': ['127.0.0.1', '10.0.0.1-10.0.0.9', '::1', 'unix'],"
    "              'destination': [':80', '*:443', '[::1]:8000-8100'],"
    "              'if': '$cookie_x'},"
    "    'action': {'pass': 'applications/blog', 'rewrite': '/index.php',"
    "               'response_headers': {'X-Frame-Options': 'DENY', 'Server': null}}},"
    "   {'match': {'uri': '/static/*'},"
    "    'action': {'share': ['/srv/www$uri', '/srv/alt$uri'], 'index': 'index.htm',"
    "               'types': ['image/*', '!text/x-php', '~^text/'], 'chroot': '/srv',"
    "               'follow_symlinks': false, 'traverse_mounts': false,"
    "               'fallback': {'share': '/srv/fallback$uri',"
    "                            'fallback': {'return': 404}}}},"
    "   {'match': {'uri': '/old'}, 'action': {'return': 301, 'location': '/new'}},"
    "   {'match': {'uri': '/proxy/*'}, 'action': {'proxy': 'http://127.0.0.1:9000'}},"
    "   {'match': {'uri': '/v6/*'}, 'action': {'proxy': 'http://[::1]:9000'}},"
    "   {'match': {'uri': '/sock/*'}, 'action': {'proxy': 'http://unix:/run/b.sock'}},"
    "   {'action': {'pass': '$host'}}"
    "  ],"
    "  'fallback': [{'action': {'pass': 'routes/main'}}]"
    " },"
    " 'applications': {"
    "  'blog': {'type': 'php 8.2', 'root': '/srv/blog', 'script': 'index.php',"
    "           'index': 'index.php', 'user': 'www-data', 'group': 'www-data',"
    "           'options': {'file': '/etc/php.ini', 'admin': {'memory_limit': '256M'},"
    "                       'user': {'display_errors': '0'}},"
    "           'processes': {'max': 10, 'spare': 2, 'idle_timeout': 20},"
    "           'limits': {'timeout': 30, 'requests': 1000},"
    "           'environment': {'APP_ENV': 'prod', 'EMPTY': ''},"
    "           'isolation': {'namespaces': {'credential': true, 'mount': true,"
    "                         'pid': true, 'uname': true, 'network': false,"
    "                         'cgroup': true, 'ipc': true},"
    "                         'uidmap': [{'container': 0, 'host': 33, 'size': 1}],"
    "                         'gidmap': [{'container': 0, 'host': 33, 'size': 1}],"
    "                         'rootfs': '/var/lib/warren/blog',"
    "                         'automount': {'language_deps': true, 'procfs': true,"
    "                                       'tmpfs': false},"
    "                         'cgroup': {'path': 'warren/blog'}, 'new_privs': false,"
    "                         'mounts': [{'source': '/srv/data', 'destination':"
    "                                     '/data', 'read_only': true}],"
    "                         'rlimits': {'nofile': 1024, 'nproc': 64, 'as': 0,"
    "                                     'core': 0, 'cpu': 60, 'fsize': 1048576},"
    "                         'capabilities': ['CAP_NET_BIND_SERVICE'],"
    "                         'seccomp': 'default'},"
    "           'working_directory': '/srv/blog', 'stdout': '/var/log/o.log',"
    "           'stderr': '/var/log/e.log'},"
    "  'api': {'type': 'python 3.11', 'path': ['/srv/api', '/srv/lib'],"
    "          'home': '/srv/venv', 'protocol': 'asgi', 'threads': 4,"
    "          'thread_stack_size': 262144, 'processes': 4,"
    "          'targets': {'front': {'module': 'front.app', 'callable': 'app'},"
    "                      'admin': {'module': 'admin', 'factory': true,"
    "                                'prefix': '/admin'}}},"
    "  'wsgi': {'type': 'python', 'module': 'wsgi', 'callable': 'application',"
    "           'prefix': '/app'},"
    "  'go': {'type': 'external', 'executable': '/srv/go/app',"
    "         'arguments': ['--port', '8000'], 'protocol': 'http',"
    "         'processes': 0},"
    "  'pl': {'type': 'perl', 'script': '/srv/app.psgi', 'threads': 2},"
    "  'rb': {'type': 'ruby 3.1', 'script': 'config.ru', 'hooks': 'hooks.rb'},"
    "  'jv': {'type': 'java', 'webapp': '/srv/app.war', 'classpath': ['/a.jar'],"
    "         'options': ['-Dx=y']},"
    "  'wa': {'type': 'wasm', 'module': '/m.wasm', 'request_handler': 'r',"
    "         'malloc_handler': 'm', 'free_handler': 'f',"
    "         'access': {'filesystem': ['/tmp']}},"
    "  'wc': {'type': 'wasm-wasi-component', 'component': '/c.wasm'},"
    "  'ph': {'type': 'php', 'targets': {'index': {'root': '/srv/ph'},"
    "         'direct': {'root': '/srv/ph', 'script': 'x.php'}}}"
    " },"
    " 'upstreams': {"
    "  'pool': {'servers': {'127.0.0.1:9001': {}, '127.0.0.1:9002': {'weight': 2},"
    "                       '[::1]:9003': {'weight': 0.5}}}"
    " },"
    " 'settings': {"
    "  'http': {'header_read_timeout': 10, 'body_read_timeout': 10,"
    "           'send_timeout': 10, 'idle_timeout': 180, 'body_buffer_size': 16384,"
    "           'max_body_size': 0, 'large_header_buffer_size': 8192,"
    "           'large_header_buffers': 8, 'discard_unsafe_fields': false,"
    "           'log_route': true, 'server_version': false,"
    "           'chunked_transform': true, 'http2': true,"
    "           'http2_max_concurrent_streams': 1024,"
    "           'websocket': {'read_timeout': 60, 'keepalive_interval': 30,"
    "                         'max_frame_size': 1048576},"
    "           'static': {'mime_types': {'text/plain': ['.log', 'README'],"
    "                                     'application/x-w': '.w'}}},"
    "  'js_module': ['a', 'b'],"
    "  'listen_threads': 0"
    " },"
    " 'access_log': {'path': '/var/log/warren/access.log',"
    "                'format': {'remote': '$remote_addr', 'status': '$status'},"
    "                'if': '$cookie_log'}"
    "}";

static const good_case_t good[] = {
    { "empty", "{}" },
    { "full", full_config },
    { "listener-routes", "{'listeners': {'*:80': {'pass': 'routes'}}, 'routes': []}" },
    { "listener-app", "{'listeners': {'0.0.0.0:80': {'pass': 'applications/a'}},"
      " 'applications': {'a': {'type': 'external', 'executable': '/x'}}}" },
    { "listener-variable", "{'listeners': {'*:80': {'pass': 'routes/$host'}}}" },
    { "listener-encoded-app", "{'listeners': {'*:80': {'pass': 'applications/a%2Fb'}},"
      " 'applications': {'a/b': {'type': 'external', 'executable': '/x'}}}" },
    { "listener-abstract-unix", "{'listeners': {'unix:@warren': {'pass': 'routes'}},"
      " 'routes': []}" },
    { "redirect", ACT("{'return': 301, 'location': 'https://e.x/'}") },
    { "return-zero", ACT("{'return': 0}") },
    { "metrics", ACT("{'metrics': 'prometheus', 'response_headers': {'X-A': 'b'}}") },
    { "metrics-json", ACT("{'metrics': 'json'}") },
    { "share-fallback", ACT("{'share': ['/srv/www$uri'], 'fallback': "
      "{'return': 404}}") },
    { "source-cidr", MATCH("{'source': ['127.0.0.0/8', '!10.0.0.1', "
      "'2001:db8::/32', '[::1]', '*:80', '*']}") },
    { "headers-array", MATCH("{'headers': [{'Host': '*.example.com'}]}") },
    { "uri-regex-percent", MATCH("{'uri': '~^/a%'}") },
    { "scheme-upper", MATCH("{'scheme': 'HTTPS'}") },
    { "weight-fraction", UPS("{'127.0.0.1:80': {'weight': 0.5}}") },
    { "weight-max", UPS("{'127.0.0.1:80': {'weight': 1000000}}") },
    { "servers-empty", UPS("{}") },
    { "python-plain", APP("{'type': 'python', 'path': '/tmp', 'module': 'wsgi'}") },
    { "python-empty-prefix", APP("{'type': 'python', 'module': 'm', "
      "'prefix': ''}") },
    { "go-alias", APP("{'type': 'go', 'executable': '/x'}") },
    { "isolation-userns", ISO("{'namespaces': {'credential': true, 'pid': true, "
      "'mount': true}, 'uidmap': [{'container': 0, 'host': 65534, 'size': 1}], "
      "'gidmap': [{'container': 0, 'host': 65534, 'size': 1}]}") },
    { "rootfs-chroot", ISO("{'rootfs': '/srv/root'}") },
    { "seccomp-bool", ISO("{'seccomp': true}") },
    { "access-log-string", "{'access_log': '/var/log/access.log'}" },
    { "settings-bounds", HTTP("{'idle_timeout': 0, 'large_header_buffer_size': "
      "1024, 'max_body_size': 9223372036854775807}") },
};

#define N_BAD  (sizeof(bad) / sizeof(bad[0]))
#define N_GOOD (sizeof(good) / sizeof(good[0]))

/* ' -> " so the tables above read like JSON. */
static char *
dq(const char *s)
{
    char *out = strdup(s), *p;

    assert_non_null(out);
    for (p = out; *p != '\0'; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    return out;
}

static json_t *
load(const char *text)
{
    wr_conf_error_t err;
    char           *json = dq(text);
    json_t         *root;

    wr_conf_error_init(&err);
    root = wr_conf_parse(json, strlen(json), &err);
    if (root == NULL) {
        fail_msg("test config does not parse: %s (%s)", err.detail, text);
    }
    free(json);
    wr_conf_error_clear(&err);
    return root;
}

static void
run_bad(void **state)
{
    const bad_case_t *c = *state;
    wr_conf_error_t   err;
    json_t           *root = load(c->json);

    wr_conf_error_init(&err);
    assert_int_equal(wr_conf_validate(root, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.error, "Invalid configuration.");
    assert_non_null(err.path);
    if (strcmp(err.path, c->path) != 0 || strstr(err.detail, c->detail) == NULL) {
        fail_msg("%s: got path \"%s\" detail \"%s\"; want \"%s\" / \"%s\"",
                 c->name, err.path, err.detail, c->path, c->detail);
    }
    if (c->suggest == NULL) {
        assert_null(err.suggestion);
    } else {
        assert_non_null(err.suggestion);
        assert_non_null(strstr(err.suggestion, c->suggest));
    }
    /* The sentence form: one capitalized sentence ending with a period. */
    assert_true(err.detail[0] >= 'A' && err.detail[0] <= 'Z');
    assert_int_equal(err.detail[strlen(err.detail) - 1], '.');
    wr_conf_error_clear(&err);
    json_decref(root);
}

static void
run_good(void **state)
{
    const good_case_t *c = *state;
    wr_conf_error_t    err;
    json_t            *root = load(c->json);
    json_t            *modules = json_pack("{s:b,s:b}", "a", 1, "b", 1);   /* /js_modules */

    wr_conf_error_init(&err);
    if (wr_conf_validate_stored(root, NULL, modules, &err) != 0) {
        fail_msg("%s: refused at \"%s\": %s", c->name, err.path, err.detail);
    }
    wr_conf_error_clear(&err);
    json_decref(modules);
    json_decref(root);
}

/* ---- cases that JSON text can't express */

static void
test_root_not_object(void **state)
{
    wr_conf_error_t err;
    json_t         *root = json_array();

    wr_conf_error_init(&err);
    assert_int_equal(wr_conf_validate(root, &err), -1);
    assert_string_equal(err.path, "");
    assert_non_null(strstr(err.detail, "must be an object"));
    wr_conf_error_clear(&err);
    assert_int_equal(wr_conf_validate(NULL, &err), -1);
    wr_conf_error_clear(&err);
    json_decref(root);
}

static void
test_nul_in_string(void **state)
{
    wr_conf_error_t err;
    json_t         *root = json_pack("{s:s#}", "access_log", "/a\0b", (int) 4);

    assert_non_null(root);
    wr_conf_error_init(&err);
    assert_int_equal(wr_conf_validate(root, &err), -1);
    assert_string_equal(err.path, "/access_log");
    assert_non_null(strstr(err.detail, "NUL"));
    wr_conf_error_clear(&err);
    json_decref(root);
}

static void
test_error_json_shape(void **state)
{
    wr_conf_error_t err;
    json_t         *root = load("{'listenrs': {}}"), *j, *want;

    wr_conf_error_init(&err);
    assert_int_equal(wr_conf_validate(root, &err), -1);
    j = wr_conf_error_json(&err);
    want = json_pack("{s:s,s:s,s:{s:s},s:s}", "error", "Invalid configuration.",
                     "detail", "Unknown key \"listenrs\".", "location", "path",
                     "/listenrs", "suggestion", "Did you mean \"listeners\"?");
    assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);
    wr_conf_error_clear(&err);
    json_decref(root);
}

/* A later section's structure error wins over an earlier reference error:
 * references are only checked once the whole document is well-formed. */
static void
test_structure_before_references(void **state)
{
    wr_conf_error_t err;
    json_t *root = load("{'listeners': {'*:80': {'pass': 'applications/a'}},"
                        " 'applications': {'a': {'type': 'external'}}}");

    wr_conf_error_init(&err);
    assert_int_equal(wr_conf_validate(root, &err), -1);
    assert_string_equal(err.path, "/applications/a");
    wr_conf_error_clear(&err);
    json_decref(root);
}

/* sun_path holds 108 bytes with the NUL: a 107-byte path fits, 108 doesn't. */
static void
test_unix_path_length(void **state)
{
    char            key[160], want[200];
    wr_conf_error_t err;
    json_t         *root;
    size_t          path_len;

    for (path_len = 107; path_len <= 108; path_len++) {
        memset(key, 0, sizeof(key));
        memcpy(key, "unix:/", 6);
        memset(key + 6, 'a', path_len - 1);
        root = json_pack("{s:{s:{s:s}},s:[]}", "listeners", key, "pass",
                         "routes", "routes");
        wr_conf_error_init(&err);
        if (path_len == 107) {
            assert_int_equal(wr_conf_validate(root, &err), 0);
        } else {
            assert_int_equal(wr_conf_validate(root, &err), -1);
            snprintf(want, sizeof(want), "/listeners/unix:~1%s", key + 6);
            assert_string_equal(err.path, want);
            assert_non_null(strstr(err.detail, "too long"));
        }
        wr_conf_error_clear(&err);
        json_decref(root);
    }
}

static void
test_deep_fallback_refused(void **state)
{
    /* fallback nests without bound in the schema; the path stack bounds it. */
    json_t         *act = json_pack("{s:i}", "return", 404), *root;
    wr_conf_error_t err;
    int             i;

    for (i = 0; i < 100; i++) {
        act = json_pack("{s:s,s:o}", "share", "/x", "fallback", act);
    }
    root = json_pack("{s:[{s:o}]}", "routes", "action", act);
    wr_conf_error_init(&err);
    assert_int_equal(wr_conf_validate(root, &err), -1);
    assert_non_null(strstr(err.detail, "nested too deeply"));
    wr_conf_error_clear(&err);
    json_decref(root);
}

int
main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_root_not_object),
        cmocka_unit_test(test_nul_in_string),
        cmocka_unit_test(test_error_json_shape),
        cmocka_unit_test(test_structure_before_references),
        cmocka_unit_test(test_deep_fallback_refused),
        cmocka_unit_test(test_unix_path_length),
    };
    size_t            n_fixed = sizeof(fixed) / sizeof(fixed[0]);
    size_t            n = N_BAD + N_GOOD + n_fixed, i, k = 0;
    struct CMUnitTest *tests = calloc(n, sizeof(*tests));
    int               rc;

    if (tests == NULL) {
        return 1;
    }
    for (i = 0; i < N_BAD; i++) {
        tests[k++] = (struct CMUnitTest) {
            .name = bad[i].name, .test_func = run_bad,
            .initial_state = (void *) &bad[i],
        };
    }
    for (i = 0; i < N_GOOD; i++) {
        tests[k++] = (struct CMUnitTest) {
            .name = good[i].name, .test_func = run_good,
            .initial_state = (void *) &good[i],
        };
    }
    for (i = 0; i < n_fixed; i++) {
        tests[k++] = fixed[i];
    }
    rc = _cmocka_run_group_tests("conf_validate", tests, n, NULL, NULL);
    free(tests);
    return rc;
}
