#!/usr/bin/env bash
# A local Neo4j Community server for gmem's tests, CI and Browser, built from Maven Central.
#
# Neo4j publishes no server tarball to Maven Central, and these machines reach neither
# neo4j.com nor a Docker engine, so this script assembles the server from its jars:
# a throwaway pom with org.neo4j:neo4j (the server, Bolt, Cypher, storage) and
# org.neo4j.client:neo4j-browser (served at /browser from the classpath), copied by Maven
# into a cache outside git, then started as a plain `java -cp` process on Java 17.
#
# Usage: server.sh install|start|stop|restart|status|env|reset
#   install  fetch the jars and write the configuration (no-op when cached)
#   start    install if needed, start in the background, wait until Bolt answers
#   stop     stop the server started from this home (by its pid file)
#   status   exit 0 and print where it listens when it runs, exit 3 when it does not
#   env      print the GMEM_NEO4J_* exports the tests read: eval "$(server.sh env)"
#   reset    stop, then delete the databases (the next start sets the password anew)
#
# Settings (environment):
#   GMEM_NEO4J_HOME        cache and server home     (default ~/.cache/gmem/neo4j)
#   GMEM_NEO4J_VERSION     org.neo4j:neo4j version   (default 5.26.30, newest 5.26 LTS patch)
#   GMEM_NEO4J_BROWSER_VERSION                       (default 5.24.0)
#   GMEM_NEO4J_PASSWORD    password of user neo4j    (default gmem-neo4j-test)
#   GMEM_NEO4J_BOLT_PORT / GMEM_NEO4J_HTTP_PORT      (default 7687 / 7474, on 127.0.0.1)
#   GMEM_NEO4J_HEAP / GMEM_NEO4J_PAGECACHE           (default 1g / 256m: sized for 2 cores)
#   GMEM_NEO4J_VECTOR_MERGE_FACTOR  Lucene segments of one size before they are merged
#                          in a vector index (default 2; Neo4j's own default is 50)
#   GMEM_NEO4J_START_TIMEOUT  seconds to wait for Bolt and the database (default 120)
#   JAVA                   java binary, 17 or 21     (default: java on PATH)

set -euo pipefail

NEO4J_VERSION="${GMEM_NEO4J_VERSION:-5.26.30}"
BROWSER_VERSION="${GMEM_NEO4J_BROWSER_VERSION:-5.24.0}"
HOME_DIR="${GMEM_NEO4J_HOME:-${HOME}/.cache/gmem/neo4j}"
PASSWORD="${GMEM_NEO4J_PASSWORD:-gmem-neo4j-test}"
BOLT_PORT="${GMEM_NEO4J_BOLT_PORT:-7687}"
HTTP_PORT="${GMEM_NEO4J_HTTP_PORT:-7474}"
HEAP="${GMEM_NEO4J_HEAP:-1g}"
PAGECACHE="${GMEM_NEO4J_PAGECACHE:-256m}"
START_TIMEOUT="${GMEM_NEO4J_START_TIMEOUT:-120}"
VECTOR_MERGE_FACTOR="${GMEM_NEO4J_VECTOR_MERGE_FACTOR:-2}"
JAVA="${JAVA:-java}"

LIB="${HOME_DIR}/lib"
CONF_DIR="${HOME_DIR}/conf"
PID_FILE="${HOME_DIR}/run/neo4j.pid"
CONSOLE_LOG="${HOME_DIR}/logs/console.log"
STAMP="${LIB}/.gmem-installed"
STAMP_TEXT="neo4j=${NEO4J_VERSION} browser=${BROWSER_VERSION}"

say() { printf 'neo4j: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

check_java() {
    command -v "${JAVA}" >/dev/null 2>&1 || die "java not found: install OpenJDK 17 (apt-get install openjdk-17-jre-headless) or set JAVA"
    local major
    major="$("${JAVA}" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    case "${major}" in
        17 | 21) ;;
        *) die "Neo4j ${NEO4J_VERSION} needs Java 17 or 21, found '${major}': set JAVA to one of them" ;;
    esac
}

write_pom() {
    # Packaging pom: nothing is built, Maven only resolves and copies the runtime closure.
    cat >"${HOME_DIR}/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.gmem</groupId>
  <artifactId>gmem-neo4j-server</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.neo4j</groupId>
      <artifactId>neo4j</artifactId>
      <version>${NEO4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.neo4j.client</groupId>
      <artifactId>neo4j-browser</artifactId>
      <version>${BROWSER_VERSION}</version>
    </dependency>
  </dependencies>
</project>
EOF
}

write_conf() {
    # Rewritten on every install/start so that port and memory settings follow the env.
    mkdir -p "${CONF_DIR}"
    cat >"${CONF_DIR}/neo4j.conf" <<EOF
# Written by graph_store/neo4j/server.sh; edits are overwritten on the next start.
server.default_listen_address=127.0.0.1
server.default_advertised_address=127.0.0.1
server.bolt.enabled=true
server.bolt.listen_address=127.0.0.1:${BOLT_PORT}
server.bolt.advertised_address=127.0.0.1:${BOLT_PORT}
server.http.enabled=true
server.http.listen_address=127.0.0.1:${HTTP_PORT}
server.http.advertised_address=127.0.0.1:${HTTP_PORT}
server.https.enabled=false
dbms.security.auth_enabled=true
dbms.usage_report.enabled=false
client.allow_telemetry=false
server.memory.pagecache.size=${PAGECACHE}
db.tx_log.rotation.retention_policy=100M size
# Every commit adds a Lucene segment to a vector index and a search visits each one; at
# Neo4j's default (50) an index written one task per commit is searched through dozens
# of small HNSW graphs. Merging pairwise keeps about log2(commits) of them.
internal.dbms.index.vector.standard_merge_factor=${VECTOR_MERGE_FACTOR}
server.directories.data=${HOME_DIR}/data
server.directories.logs=${HOME_DIR}/logs
server.directories.plugins=${HOME_DIR}/plugins
server.directories.import=${HOME_DIR}/import
server.directories.run=${HOME_DIR}/run
server.directories.lib=${LIB}
EOF
}

cmd_install() {
    mkdir -p "${HOME_DIR}"/{lib,conf,data,logs,plugins,import,run}
    write_conf
    if [[ -f "${STAMP}" && "$(cat "${STAMP}")" == "${STAMP_TEXT}" ]]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven (apt-get install maven)"
    check_java
    say "fetching Neo4j ${NEO4J_VERSION} and Browser ${BROWSER_VERSION} jars from Maven Central into ${LIB}"
    write_pom
    rm -rf "${LIB}" && mkdir -p "${LIB}"
    local start=${SECONDS}
    if ! mvn -B -q -Dstyle.color=never -f "${HOME_DIR}/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="${LIB}" >"${HOME_DIR}/logs/maven.log" 2>&1; then
        tail -n 30 "${HOME_DIR}/logs/maven.log" >&2
        die "Maven could not fetch the Neo4j jars: check access to Maven Central and the versions"
    fi
    [[ -n "$(find "${LIB}" -name "neo4j-${NEO4J_VERSION}.jar" -print -quit)" ]] \
        || die "org.neo4j:neo4j ${NEO4J_VERSION} is missing from ${LIB} after Maven ran"
    printf '%s\n' "${STAMP_TEXT}" >"${STAMP}"
    say "installed $(find "${LIB}" -name '*.jar' | wc -l) jars in $((SECONDS - start))s"
}

server_pid() {
    # The pid from the pid file, only while that process is still this home's Neo4j.
    [[ -f "${PID_FILE}" ]] || return 1
    local pid
    pid="$(cat "${PID_FILE}")"
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    kill -0 "${pid}" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q -- "--home-dir=${HOME_DIR}" || return 1
    printf '%s\n' "${pid}"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# 0: the default database answers with this password; 2: wrong password; 1: not yet.
database_ready() {
    local code
    code="$(curl -s -o /dev/null -w '%{http_code}' -u "neo4j:${PASSWORD}" \
        -H 'Content-Type: application/json' \
        -d '{"statements":[{"statement":"RETURN 1"}]}' \
        "http://127.0.0.1:${HTTP_PORT}/db/neo4j/tx/commit" 2>/dev/null || true)"
    case "${code}" in
        200) return 0 ;;
        401 | 403) return 2 ;;
        *) return 1 ;;
    esac
}

set_initial_password() {
    # Only possible before the first start: neo4j-admin's command, run in-process.
    [[ -f "${HOME_DIR}/data/dbms/auth.ini" || -d "${HOME_DIR}/data/databases/system" ]] && return 0
    NEO4J_HOME="${HOME_DIR}" NEO4J_CONF="${CONF_DIR}" "${JAVA}" -cp "${LIB}/*" \
        org.neo4j.cli.AdminTool dbms set-initial-password "${PASSWORD}" >/dev/null \
        || die "could not set the initial password (see the output above)"
}

cmd_start() {
    if pid="$(server_pid)"; then
        say "already running (pid ${pid}, bolt://127.0.0.1:${BOLT_PORT})"
        return 0
    fi
    cmd_install
    check_java
    for port in "${BOLT_PORT}" "${HTTP_PORT}"; do
        port_open "${port}" && die "port ${port} is taken by another process: stop it or set GMEM_NEO4J_BOLT_PORT/GMEM_NEO4J_HTTP_PORT"
    done
    set_initial_password
    local start=${SECONDS}
    # JVM flags go on the command line: without Neo4j's bootloader, server.jvm.additional
    # is never read. setsid keeps the server alive after the calling shell exits.
    (
        cd "${HOME_DIR}"
        exec setsid "${JAVA}" -Xms256m -Xmx"${HEAP}" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError \
            -XX:-OmitStackTraceInFastThrow -XX:+DisableExplicitGC -Dfile.encoding=UTF-8 \
            -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true \
            -Dlog4j2.disable.jmx=true --add-opens=java.base/java.nio=ALL-UNNAMED \
            --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
            -cp "${LIB}/*" org.neo4j.server.CommunityEntryPoint \
            --home-dir="${HOME_DIR}" --config-dir="${CONF_DIR}" \
            </dev/null >"${CONSOLE_LOG}" 2>&1
    ) &
    local pid=$!
    printf '%s\n' "${pid}" >"${PID_FILE}"
    local deadline=$((SECONDS + START_TIMEOUT)) rc
    while ((SECONDS < deadline)); do
        if ! kill -0 "${pid}" 2>/dev/null; then
            rm -f "${PID_FILE}"
            tail -n 20 "${CONSOLE_LOG}" "${HOME_DIR}/logs/neo4j.log" >&2 2>/dev/null || true
            die "the server exited during start-up (logs above, full logs in ${HOME_DIR}/logs)"
        fi
        if port_open "${BOLT_PORT}"; then
            rc=0
            database_ready || rc=$?
            if ((rc == 0)); then
                say "started in $((SECONDS - start))s: pid ${pid}, bolt://127.0.0.1:${BOLT_PORT}, http://127.0.0.1:${HTTP_PORT}/browser/"
                return 0
            fi
            if ((rc == 2)); then
                die "server runs (pid ${pid}) but rejects GMEM_NEO4J_PASSWORD: its data was initialised with another password; run '$0 reset' to start over"
            fi
        fi
        sleep 0.5
    done
    die "Bolt did not answer within ${START_TIMEOUT}s (pid ${pid}); see ${HOME_DIR}/logs/neo4j.log"
}

cmd_stop() {
    local pid
    if ! pid="$(server_pid)"; then
        rm -f "${PID_FILE}"
        say "not running"
        return 0
    fi
    kill -TERM "${pid}"
    local deadline=$((SECONDS + 60))
    while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.3; done
    if kill -0 "${pid}" 2>/dev/null; then
        say "pid ${pid} ignored SIGTERM for 60s; killing it"
        kill -KILL "${pid}" 2>/dev/null || true
    fi
    rm -f "${PID_FILE}"
    say "stopped (pid ${pid})"
}

cmd_status() {
    local pid
    if pid="$(server_pid)" && port_open "${BOLT_PORT}"; then
        echo "running: pid ${pid}, bolt://127.0.0.1:${BOLT_PORT}, http://127.0.0.1:${HTTP_PORT}/browser/, home ${HOME_DIR}"
        return 0
    fi
    echo "not running (home ${HOME_DIR})"
    return 3
}

cmd_env() {
    printf 'export GMEM_NEO4J_URI=%q\n' "bolt://127.0.0.1:${BOLT_PORT}"
    printf 'export GMEM_NEO4J_USER=%q\n' "neo4j"
    printf 'export GMEM_NEO4J_PASSWORD=%q\n' "${PASSWORD}"
}

cmd_reset() {
    cmd_stop
    rm -rf "${HOME_DIR}/data" "${HOME_DIR}/logs"
    mkdir -p "${HOME_DIR}/data" "${HOME_DIR}/logs"
    say "deleted the databases in ${HOME_DIR}/data"
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop && cmd_start ;;
    status) cmd_status ;;
    env) cmd_env ;;
    reset) cmd_reset ;;
    *)
        sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
        exit 2
        ;;
esac
