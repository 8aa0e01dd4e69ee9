#!/usr/bin/env bash
# scripts/bench.sh — the benchmark of BENCHMARKS.md, in one command.
#
# Builds the release service and three helper binaries, starts a fake Okta
# (crates/fake-okta, bin fake-okta), the service against it, a bare actix-web handler
# (crates/bench/src/bin/bare_auth.rs), Apache httpd with mod_auth_openidc and nginx
# (auth_request), all on 127.0.0.1 from a temporary directory; signs in for
# real (curl through /oauth2/start, the fake's /authorize and the callback; the
# same through mod_auth_openidc), warms the groups cache, then measures in
# alternating rounds (even rounds run the targets in reverse order):
#   - maximum throughput with wrk: ours (/oauth2/auth and /oauth2/forward),
#     ours with sessions in Redis (a second instance with SESSION_STORE=redis://
#     on a redis-server started here), the bare handler, mod_auth_openidc,
#     nginx -> ours, nginx -> bare, the same two for a DENIED check (no cookie:
#     an empty 401 over the keep-alive upstream; the bare handler's
#     /oauth2/denied, with the same headers), nginx static; and a third instance (custom server
#     issuer, BEARER_AUDIENCE, IDENTITY_JWT_KEY) checked with a cookie and with
#     a bearer token;
#   - latency percentiles at a fixed rate of half our median maximum, with the
#     open-loop generator crates/bench/src/bin/open_loop.rs (or oha with --oha): ours (both
#     stores), and the bare handler and nginx static as controls at the same rate;
#   - issue 15's pairs on ONE SHARED CORE (unless --no-shared-core): both
#     sides of each ratio at the same time, both servers on core 0, a wrk
#     for each on core 1, each side's requests divided by its own CPU time
#     (nanoseconds, /proc/PID/task/*/schedstat). Both sides meet the same
#     host in the same milliseconds, so a host whose speed drifts (a shared
#     VM: ±25% between rounds of one run) moves both alike. The nginx pairs
#     use a second nginx with the same configuration, one per side;
#   - the sign-in path: start + the fake's /authorize + callback pairs per
#     second (crates/bench/src/bin/sign_in_load.rs on the load core, the fake Okta there
#     too), and per second of the service's own CPU time (its one core);
# and prints the medians, ratios and targets (also in target/bench/results.md),
# then, on its LAST line, issue 15's ratios and their targets:
#   ratios: auth=… forward=… bearer=… nginx=… nginx_denied=… redis=… signins_per_s=… (targets …)
# (pinned, a round counts for a ratio only when both sides had >= 90% of core 0),
# and on the line before it the same ratios from the shared core:
#   shared-core ratios: auth=… forward=… bearer=… nginx=… nginx_denied=… redis=… (…)
# It fails when a step fails, when any warm answer is not 2xx, or when the fake
# Okta saw a call during the warm runs.
#
#   scripts/bench.sh                  full run (5 rounds of 10 s per target)
#   scripts/bench.sh --smoke          CI: 1 round of 2 s per step
#   options: --rounds N  --duration S  --connections C  --no-apache  --no-latency
#            --no-redis (skip the Redis-backed instance)
#            --debug (use the debug build cargo test made: no release build,
#                     figures meaningless; for checking the script, as CI does)
#            --oha (latency with oha from crates.io, built into target/tools)
#            --rate R (latency at R req/s instead of half our maximum)
#            --wait-quiet S (before the warm-up and each round, wait up to S
#                            seconds for other work on the machine to end)
#            --no-shared-core (skip the shared-core step; it needs 2 cores)
#            --keep (keep the temporary directory)
#
# Pinning: the servers under test (and nginx/Apache, which run in front of or
# instead of them) on core 0, the load generator (and the fake Okta) on core 1,
# when taskset exists and there are at least 2 cores; the last line says
# whether the run was pinned. Only loopback traffic; every process started
# here is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROUNDS=5
DURATION=10
CONNECTIONS=32
WARMUP=2
SMOKE=false
APACHE=true
REDIS=true
PROFILE=release
LATENCY=true
USE_OHA=false
FIXED_RATE=
KEEP=false
WAIT_QUIET=0
SHARED_CORE=true

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=true; ROUNDS=1; DURATION=2; WARMUP=1 ;;
    --rounds) ROUNDS=${2:?--rounds N}; shift ;;
    --duration) DURATION=${2:?--duration SECONDS}; shift ;;
    --connections) CONNECTIONS=${2:?--connections C}; shift ;;
    --no-apache) APACHE=false ;;
    --no-redis) REDIS=false ;;
    --debug) PROFILE=debug ;;
    --no-latency) LATENCY=false ;;
    --oha) USE_OHA=true ;;
    --rate) FIXED_RATE=${2:?--rate REQUESTS_PER_SECOND}; shift ;;
    --wait-quiet) WAIT_QUIET=${2:?--wait-quiet SECONDS}; shift ;;
    --no-shared-core) SHARED_CORE=false ;;
    --keep) KEEP=true ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -z "$FIXED_RATE" ] || [[ "$FIXED_RATE" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --rate takes requests per second" >&2; exit 2; }
[[ "$WAIT_QUIET" =~ ^[0-9]+$ ]] || { echo "bench: --wait-quiet takes seconds" >&2; exit 2; }
for n in "$ROUNDS" "$DURATION" "$CONNECTIONS"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench: $n is not a positive whole number" >&2; exit 2; }
done
[ "$DURATION" -le 300 ] || { echo "bench: --duration is at most 300 s" >&2; exit 2; }

say() { printf '\n== %s\n' "$*"; }
die() { printf '\nbench: FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Processes and files: everything started here is stopped on exit.

WORK=$(mktemp -d /tmp/forward-auth-bench.XXXXXX)
# nginx's and Apache's workers run as nobody/www-data when we are root.
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local status=$?
  set +e
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "$status" -ne 0 ]; then
    for log in "$WORK"/*.err "$WORK"/nginx/error.log "$WORK"/apache/error.log; do
      [ -s "$log" ] && { echo "--- ${log#"$WORK"/} (last lines)"; tail -n 20 "$log"; }
    done
  fi
  if $KEEP; then echo "bench: kept $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs in the background, output in $WORK/NAME.out/.err.
start() {
  local name=$1; shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
  PIDS+=($!)
}

# wait_line NAME KEY: the value of the first `KEY=value` line of NAME's stdout.
wait_line() {
  local name=$1 key=$2 pid=${PIDS[-1]}
  for _ in $(seq 300); do
    local line
    line=$(grep -m1 "^$key=" "$WORK/$name.out" 2>/dev/null || true)
    if [ -n "$line" ]; then echo "${line#*=}"; return; fi
    kill -0 "$pid" 2>/dev/null || die "$name exited: $(tail -n 5 "$WORK/$name.err")"
    sleep 0.1
  done
  die "$name printed no $key within 30 s"
}

# wait_http URL NAME: until URL answers 200.
wait_http() {
  for _ in $(seq 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)" = 200 ] && return
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "$2 exited: $(tail -n 5 "$WORK/$2.err")"
    sleep 0.2
  done
  die "$2 did not answer 200 on $1 within 30 s"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------
say "tools"

need_package() { # BINARY PACKAGE...: install Debian packages when BINARY is missing
  local binary=$1; shift
  [ -x "$binary" ] || command -v "$binary" >/dev/null 2>&1 && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $* (Debian)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 || {
      apt-get update >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
    }
  else
    die "$binary is missing: apt-get install $* (as root), or see BENCHMARKS.md"
  fi
}
need_package wrk wrk
need_package /usr/sbin/nginx nginx
command -v curl >/dev/null || die "curl is missing"
command -v python3 >/dev/null || die "python3 is missing"
MOD_OIDC=/usr/lib/apache2/modules/mod_auth_openidc.so
if $APACHE; then
  need_package /usr/sbin/apache2 apache2
  [ -f "$MOD_OIDC" ] || need_package "$MOD_OIDC" libapache2-mod-auth-openidc
fi
$REDIS && need_package redis-server redis-server
OHA=
if $LATENCY && $USE_OHA; then
  OHA=$(command -v oha || true)
  if [ -z "$OHA" ]; then
    OHA=$ROOT/target/tools/bin/oha
    if [ ! -x "$OHA" ]; then
      echo "installing oha from crates.io into target/tools (once; a few minutes of build)"
      cargo install oha --locked --root "$ROOT/target/tools" --quiet
    fi
  fi
fi

CORES=$(nproc)
if command -v taskset >/dev/null && [ "$CORES" -ge 2 ]; then
  SERVER_PIN=(taskset -c 0)
  LOAD_PIN=(taskset -c 1)
  PINNING="servers (and nginx/Apache) on core 0, load generator on core 1"
else
  SERVER_PIN=()
  LOAD_PIN=()
  PINNING="none (taskset missing or a single core): results are noisier"
  SHARED_CORE=false
fi
echo "cores: $CORES; pinning: $PINNING"

say "cargo build --profile $PROFILE (forward-auth, fake-okta, bare_auth, open_loop)"
cargo build --profile "${PROFILE/debug/dev}" --quiet --bin forward-auth --bin fake-okta --bin bare_auth --bin open_loop
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE

# ---------------------------------------------------------------------------
say "fake Okta (crates/fake-okta)"
start fake_idp "$BIN/fake-okta" 0
IDP=$(wait_line fake_idp FAKE_IDP_URL)
STATS=$(wait_line fake_idp FAKE_IDP_STATS)
wait_http "$IDP/.well-known/openid-configuration" fake_idp
# The fake Okta works only during sign-ins: its share belongs to the load side.
[ ${#LOAD_PIN[@]} -eq 0 ] || taskset -a -p -c 1 "${PIDS[-1]}" >/dev/null
echo "issuer $IDP, counters $STATS"

COOKIE_NAME=_forward_auth
# start_forward_auth NAME PORT [VAR=VALUE...]: the release service in a clean
# environment (the caller's own IDP_*/ALLOWED_* must not change the run).
start_forward_auth() {
  local name=$1 port=$2; shift 2
  start "$name" env -i PATH="$PATH" \
    IDP_PROVIDER=okta IDP_PROVIDER_URL="$IDP" \
    IDP_CLIENT_ID=fake-client-id IDP_CLIENT_SECRET=fake-client-secret \
    IDP_SERVICE_ACCOUNT=fake-ssws-token \
    AUTHENTICATE_SERVICE_URL="http://127.0.0.1:$port" ADDRESS="127.0.0.1:$port" \
    COOKIE_SECRET="$(head -c 32 /dev/urandom | base64)" COOKIE_SECURE=false \
    COOKIE_NAME="$COOKIE_NAME" LOG_LEVEL=warn GROUPS_CACHE_TTL=1h "$@" \
    "${SERVER_PIN[@]}" "$BIN/forward-auth"
  wait_http "http://127.0.0.1:$port/readyz" "$name"
}
# sign_in NAME URL: a real sign-in with curl (/oauth2/start -> the fake's
# /authorize -> /oauth2/callback); prints the session cookie's value.
sign_in() {
  local jar=$WORK/$1.jar userinfo session
  userinfo=$(curl -sS --fail --max-time 10 -L --max-redirs 5 -c "$jar" -b "$jar" \
    "$2/oauth2/start?rd=/oauth2/userinfo") || die "sign-in through $1"
  grep -q '"alice@example.com"' <<<"$userinfo" || die "sign-in through $1 did not end as alice: $userinfo"
  session=$(awk -v name="$COOKIE_NAME" '$6 == name { print $7 }' "$jar")
  [ -n "$session" ] || die "no $COOKIE_NAME cookie after sign-in through $1"
  echo "$session"
}
check_headers() { # SESSION: a signed-in check's request headers, in HEADERS
  HEADERS=(-H "Cookie: $COOKIE_NAME=$1" -H "X-Original-URL: http://app.example.com/bench/page" -H "X-Original-Method: GET")
}

say "forward-auth ($PROFILE build, LOG_LEVEL=warn)"
SVC_PORT=$(free_port)
SVC=http://127.0.0.1:$SVC_PORT
start_forward_auth forward-auth "$SVC_PORT"
SVC_PID=${PIDS[-1]}
echo "listening on $SVC"

say "sign-in through forward-auth (curl: /oauth2/start -> fake /authorize -> /oauth2/callback)"
SESSION=$(sign_in forward-auth "$SVC")
echo "session cookie: ${#SESSION} bytes"
check_headers "$SESSION"
AUTH_HEADERS=("${HEADERS[@]}")

# check_200 NAME URL CURL-ARGS...: one request, must be 200 (prints its headers).
check_200() {
  local name=$1 url=$2; shift 2
  local headers
  headers=$(curl -sS --max-time 5 -o /dev/null -D - "$@" "$url") || die "$name: $url"
  grep -q '^HTTP/1.1 200' <<<"$headers" || die "$name: $url answered $(head -n1 <<<"$headers")"
  printf '%s\n' "$headers" | grep -i '^x-auth-request-' || true
}
say "warm the groups cache (one check)"
check_200 ours "$SVC/oauth2/auth" "${AUTH_HEADERS[@]}"
check_200 ours_forward "$SVC/oauth2/forward" -H "Cookie: $COOKIE_NAME=$SESSION" >/dev/null

if $REDIS; then
  say "redis-server and a second forward-auth with SESSION_STORE=redis://"
  REDIS_PORT=$(free_port)
  mkdir -p "$WORK/redis"
  start redis "${SERVER_PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --save "" --appendonly no --dir "$WORK/redis"
  REDIS_PID=${PIDS[-1]}
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited: $(tail -n 5 "$WORK/redis.err")"
    sleep 0.1
  done
  SVCR_PORT=$(free_port)
  SVCR=http://127.0.0.1:$SVCR_PORT
  start_forward_auth forward-auth-redis "$SVCR_PORT" SESSION_STORE="redis://127.0.0.1:$REDIS_PORT/0"
  SVCR_PID=${PIDS[-1]}
  RSESSION=$(sign_in forward-auth-redis "$SVCR")
  [ "$(redis-cli -p "$REDIS_PORT" --scan --pattern 'fa:s:*' | wc -l)" = 1 ] ||
    die "the session is not in Redis"
  check_headers "$RSESSION"
  AUTH_HEADERS_REDIS=("${HEADERS[@]}")
  check_200 ours_redis "$SVCR/oauth2/auth" "${AUTH_HEADERS_REDIS[@]}"
fi

say "a third forward-auth: API clients and the signed identity (custom server, BEARER_AUDIENCE, IDENTITY_JWT_KEY)"
SVCA_PORT=$(free_port)
SVCA=http://127.0.0.1:$SVCA_PORT
# env applies its assignments in order: this IDP_PROVIDER_URL replaces the org issuer.
start_forward_auth forward-auth-api "$SVCA_PORT" IDP_PROVIDER_URL="$IDP/oauth2/default" \
  BEARER_AUDIENCE=api://default IDENTITY_JWT_KEY_FILE="$ROOT/tests/keys/identity-es256.pem"
SVCA_PID=${PIDS[-1]}
ASESSION=$(sign_in forward-auth-api "$SVCA")
check_headers "$ASESSION"
AUTH_HEADERS_JWT=("${HEADERS[@]}")
check_200 ours_jwt "$SVCA/oauth2/auth" "${AUTH_HEADERS_JWT[@]}" | grep -qi '^x-auth-request-jwt: ey' ||
  die "no X-Auth-Request-Jwt from forward-auth-api"
ACCESS_TOKEN=$(grep -m1 '^FAKE_IDP_ACCESS_TOKEN=' "$WORK/fake_idp.out" | cut -d= -f2-)
[ -n "$ACCESS_TOKEN" ] || die "the fake Okta printed no access token"
AUTH_HEADERS_BEARER=(-H "Authorization: Bearer $ACCESS_TOKEN" -H "X-Original-URL: http://app.example.com/bench/page" -H "X-Original-Method: GET")
check_200 ours_bearer "$SVCA/oauth2/auth" "${AUTH_HEADERS_BEARER[@]}" | grep -qi '^x-auth-request-user: alice@example.com' ||
  die "the bearer check of forward-auth-api is not alice"

say "bare actix-web handler (crates/bench/src/bin/bare_auth.rs)"
start bare_auth "${SERVER_PIN[@]}" "$BIN/bare_auth" 0
BARE_PID=${PIDS[-1]}
BARE=$(wait_line bare_auth BARE_AUTH_URL)
wait_http "$BARE/oauth2/auth" bare_auth
check_200 bare "$BARE/oauth2/auth" "${AUTH_HEADERS[@]}"

# ---------------------------------------------------------------------------
say "nginx (auth_request; upstream keep-alive)"
NGX_PORT=$(free_port)
NGX=http://127.0.0.1:$NGX_PORT
BARE_PORT=${BARE##*:}
mkdir -p "$WORK/nginx/www"
echo ok >"$WORK/nginx/www/ok.txt"
chmod -R a+rX "$WORK/nginx"
auth_location() { # NAME UPSTREAM: the internal subrequest location
  cat <<EOF
        location = /_auth_$1 {
            internal;
            proxy_pass http://$2/oauth2/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
            proxy_set_header X-Original-Method \$request_method;
        }
EOF
}
protected_location() { # NAME: a page behind that check, identity headers copied
  cat <<EOF
        location /$1/ {
            auth_request /_auth_$1;
            auth_request_set \$auth_user \$upstream_http_x_auth_request_user;
            auth_request_set \$auth_email \$upstream_http_x_auth_request_email;
            auth_request_set \$auth_groups \$upstream_http_x_auth_request_groups;
            add_header X-Auth-Request-User \$auth_user;
            add_header X-Auth-Request-Email \$auth_email;
            add_header X-Auth-Request-Groups \$auth_groups;
            try_files /ok.txt =404;
        }
EOF
}
cat >"$WORK/nginx/nginx.conf" <<EOF
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream forward_auth { server 127.0.0.1:$SVC_PORT; keepalive 32; }
    upstream bare_auth { server 127.0.0.1:$BARE_PORT; keepalive 32; }
    server {
        listen 127.0.0.1:$NGX_PORT;
        root $WORK/nginx/www;
$(auth_location us forward_auth)
$(auth_location bare bare_auth)
$(auth_location bare_denied bare_auth | sed 's|/oauth2/auth;|/oauth2/denied;|')
$(protected_location us)
$(protected_location bare)
$(protected_location bare_denied)
        # The same file without a check: what the subrequest is compared with.
        location /static/ { try_files /ok.txt =404; }
    }
}
EOF
start nginx "${SERVER_PIN[@]}" /usr/sbin/nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" \
  -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
NGX_PID=${PIDS[-1]}
wait_http "$NGX/static/" nginx
# The bare side's nginx for the shared-core step: the same configuration on
# its own port, so that each side's nginx time is its own.
NGX_B=$NGX NGX_B_PID=$NGX_PID
if $SHARED_CORE; then
  NGX2_PORT=$(free_port)
  sed -e "s|listen 127.0.0.1:$NGX_PORT;|listen 127.0.0.1:$NGX2_PORT;|" \
    -e "s|^pid .*|pid $WORK/nginx/nginx2.pid;|" -e "s|^error_log .*|error_log $WORK/nginx/error2.log warn;|" \
    "$WORK/nginx/nginx.conf" >"$WORK/nginx/nginx2.conf"
  start nginx2 "${SERVER_PIN[@]}" /usr/sbin/nginx -p "$WORK/nginx" -e "$WORK/nginx/error2.log" \
    -c "$WORK/nginx/nginx2.conf" -g 'daemon off;'
  NGX2_PID=${PIDS[-1]}
  wait_http "http://127.0.0.1:$NGX2_PORT/static/" nginx2
fi
check_200 nginx-us "$NGX/us/page" -H "Cookie: $COOKIE_NAME=$SESSION"
check_200 nginx-bare "$NGX/bare/page" -H "Cookie: $COOKIE_NAME=$SESSION"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$NGX/us/page")" = 401 ] ||
  die "nginx -> forward-auth lets a request without a session through"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$NGX/bare_denied/page")" = 401 ] ||
  die "nginx -> bare /oauth2/denied does not answer 401"
# The denied pair compares the checks, not their answers: nginx must receive
# (and send on) the same headers from both.
header_names() { curl -s -o /dev/null -D - "$1" | tr -d '\r' | sed -n 's/^\([A-Za-z-]*\):.*/\1/p' | tr 'A-Z' 'a-z' | grep -vx date | sort; }
[ "$(header_names "$NGX/us/page")" = "$(header_names "$NGX/bare_denied/page")" ] ||
  die "nginx's 401 through forward-auth and through bare /oauth2/denied carry different headers: $(header_names "$NGX/us/page" | tr '\n' ' ')/ $(header_names "$NGX/bare_denied/page" | tr '\n' ' ')"

# ---------------------------------------------------------------------------
if $APACHE; then
  say "Apache httpd + mod_auth_openidc (MPM event)"
  AP_PORT=$(free_port)
  AP=http://127.0.0.1:$AP_PORT
  A=$WORK/apache
  mkdir -p "$A/www/login" "$A/www/bench" "$A/run"
  echo ok >"$A/www/login/ok.txt"
  echo ok >"$A/www/bench/ok.txt"
  RUN_AS=
  if [ "$(id -u)" = 0 ]; then
    RUN_AS="User www-data
Group www-data"
    chown www-data "$A/run"
  fi
  chmod -R a+rX "$A"
  M=/usr/lib/apache2/modules
  cat >"$A/httpd.conf" <<EOF
ServerRoot "$A"
ServerName 127.0.0.1
Listen 127.0.0.1:$AP_PORT
PidFile "$A/httpd.pid"
ErrorLog "$A/error.log"
LogLevel warn
DefaultRuntimeDir "$A/run"
$RUN_AS
LoadModule mpm_event_module $M/mod_mpm_event.so
LoadModule authn_core_module $M/mod_authn_core.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule authz_user_module $M/mod_authz_user.so
LoadModule auth_openidc_module $MOD_OIDC
# One process of 64 threads on the one core it gets; keep-alive connections
# stay open for the whole run, as they do for nginx and actix.
StartServers 1
ServerLimit 1
ThreadLimit 64
ThreadsPerChild 64
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
DocumentRoot "$A/www"

OIDCProviderMetadataURL $IDP/.well-known/openid-configuration
OIDCClientID fake-client-id
OIDCClientSecret fake-client-secret
OIDCRedirectURI $AP/oidc/redirect_uri
OIDCCryptoPassphrase $(head -c 24 /dev/urandom | base64)
OIDCPKCEMethod S256
OIDCScope "openid email profile"
OIDCRemoteUserClaim email
# Server-side sessions in shared memory (the defaults, spelled out).
OIDCSessionType server-cache
OIDCCacheType shm

<Location />
    AuthType openid-connect
    Require valid-user
</Location>
# The measured location: a missing or bad session is a 401 that wrk counts,
# not a 302 to the IdP that it would count as success.
<Location /bench/>
    OIDCUnAuthAction 401
</Location>
EOF
  start apache "${SERVER_PIN[@]}" /usr/sbin/apache2 -f "$A/httpd.conf" -DFOREGROUND
  AP_PID=${PIDS[-1]}
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$AP/bench/ok.txt" || true)" = 401 ] && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || die "apache exited: $(cat "$WORK/apache.err" "$A/error.log" 2>/dev/null | tail -n 5)"
    sleep 0.2
  done
  say "sign-in through mod_auth_openidc (curl: /login/ok.txt -> fake /authorize -> /oidc/redirect_uri)"
  AJAR=$WORK/apache.jar
  page=$(curl -sS --fail --max-time 10 -L --max-redirs 5 -c "$AJAR" -b "$AJAR" "$AP/login/ok.txt") ||
    die "sign-in through mod_auth_openidc (see $A/error.log)"
  [ "$page" = ok ] || die "mod_auth_openidc sign-in did not end on the page: $page"
  AP_SESSION=$(awk '$6 == "mod_auth_openidc_session" { print $7 }' "$AJAR")
  [ -n "$AP_SESSION" ] || die "no mod_auth_openidc_session cookie after sign-in"
  echo "session cookie: ${#AP_SESSION} bytes"
  check_200 apache "$AP/bench/ok.txt" -H "Cookie: mod_auth_openidc_session=$AP_SESSION"
fi

# ---------------------------------------------------------------------------
# The targets: name, URL, request headers.
# The order puts the two sides of each of issue 15's ratios next to each other
# (redis|ours, ours|bare, forward|bare_forward, bare_bearer|bearer,
# nginx_us|nginx_bare, the denied pair): on a shared host the speed of the
# core drifts within seconds, and sides run 5 targets apart compared
# different machines. bare_forward and bare_bearer are the bare handler sent
# the very request its side is sent (Traefik's five headers, a bearer
# token): a ratio compares the code, not the size of the requests.
TARGETS=()
$REDIS && TARGETS+=(ours_redis)
TARGETS+=(ours bare ours_forward bare_forward bare_bearer ours_bearer ours_jwt)
$APACHE && TARGETS+=(apache)
TARGETS+=(nginx_us nginx_bare nginx_bare_denied nginx_us_denied nginx_static)
# Targets whose every answer must be a 401 (a denied check), not a 2xx.
is_denied() { [[ "$1" == *_denied ]]; }
target_args() {
  case "$1" in
    ours) echo "$SVC/oauth2/auth" ;;
    ours_forward) echo "$SVC/oauth2/forward" ;;
    ours_redis) echo "$SVCR/oauth2/auth" ;;
    ours_jwt | ours_bearer) echo "$SVCA/oauth2/auth" ;;
    bare | bare_forward | bare_bearer) echo "$BARE/oauth2/auth" ;;
    apache) echo "$AP/bench/ok.txt" ;;
    nginx_us) echo "$NGX/us/page" ;;
    nginx_bare) echo "$NGX_B/bare/page" ;;
    nginx_us_denied) echo "$NGX/us/page" ;;
    nginx_bare_denied) echo "$NGX_B/bare_denied/page" ;;
    nginx_static) echo "$NGX/static/page" ;;
  esac
}
target_headers() {
  case "$1" in
    ours | bare) HEADERS=("${AUTH_HEADERS[@]}") ;;
    # What Traefik sends: X-Forwarded-*, from a trusted proxy (loopback).
    ours_forward | bare_forward) HEADERS=(-H "Cookie: $COOKIE_NAME=$SESSION" -H "X-Forwarded-Proto: http"
      -H "X-Forwarded-Host: app.example.com" -H "X-Forwarded-Uri: /bench/page" -H "X-Forwarded-Method: GET") ;;
    # No cookie: a stranger, denied (401).
    nginx_us_denied | nginx_bare_denied) HEADERS=(-H "Accept: text/html") ;;
    ours_redis) HEADERS=("${AUTH_HEADERS_REDIS[@]}") ;;
    ours_jwt) HEADERS=("${AUTH_HEADERS_JWT[@]}") ;;
    ours_bearer | bare_bearer) HEADERS=("${AUTH_HEADERS_BEARER[@]}") ;;
    apache) HEADERS=(-H "Cookie: mod_auth_openidc_session=$AP_SESSION") ;;
    *) HEADERS=(-H "Cookie: $COOKIE_NAME=$SESSION") ;;
  esac
}

OUT=$ROOT/target/bench
rm -rf "$OUT/raw"
mkdir -p "$OUT/raw"
curl -sS --fail --max-time 5 "$STATS" >"$OUT/raw/okta-before.json" || die "fake Okta counters"
# Redis commands run during the warm runs: how many checks paid a round trip.
redis_stats() { $REDIS && redis-cli -p "$REDIS_PORT" info commandstats >"$OUT/raw/redis-$1.txt" || true; }
redis_stats before

# under_test TARGET: the processes that answer TARGET's requests (all on core 0).
under_test() {
  case "$1" in
    ours | ours_forward) echo "$SVC_PID" ;;
    ours_redis) echo "$SVCR_PID" "$REDIS_PID" ;;
    ours_jwt | ours_bearer) echo "$SVCA_PID" ;;
    bare | bare_forward | bare_bearer) echo "$BARE_PID" ;;
    apache) echo "$AP_PID" $(pgrep -P "$AP_PID") ;;
    nginx_us | nginx_us_denied) echo "$SVC_PID" "$NGX_PID" $(pgrep -P "$NGX_PID") ;;
    nginx_bare | nginx_bare_denied) echo "$BARE_PID" "$NGX_B_PID" $(pgrep -P "$NGX_B_PID") ;;
    nginx_static) echo "$NGX_PID" $(pgrep -P "$NGX_PID") ;;
  esac
}
# cpu_ticks PID...: user + system time of these processes (all threads), in ticks.
cpu_ticks() {
  local pid sum=0
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
    sum=$((sum + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$sum"
}
TICKS_PER_S=$(getconf CLK_TCK)
# cpu_ns PID...: CPU time these processes (all threads) have run, in ns.
cpu_ns() {
  local pid
  for pid in "$@"; do cat /proc/"$pid"/task/*/schedstat 2>/dev/null; done |
    awk '{ ns += $1 } END { printf "%.0f", ns }'
}

# wrk_run TARGET FILE SECONDS: also writes FILE.cpu, the share of one core the
# processes under test used meanwhile (100: they had core 0 to themselves and
# kept it busy; much less: the load generator could not keep them busy, or
# other work took the core).
wrk_run() {
  local url; url=$(target_args "$1")
  target_headers "$1"
  local pids before after
  pids=$(under_test "$1")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  local started=$SECONDS t0 t1
  t0=$(date +%s%N)
  "${LOAD_PIN[@]}" timeout $(($3 + 30)) wrk -t1 -c"$CONNECTIONS" -d"$3"s --latency \
    "${HEADERS[@]}" "$url" >"$2" 2>&1 || die "wrk against $1 (see $2)"
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  t1=$(date +%s%N)
  local share=$(((after - before) * 100 * 1000000000 / (TICKS_PER_S * (t1 - t0))))
  echo "$share" >"$2.cpu"
  [ $((SECONDS - started)) -le $(($3 + 5)) ] || echo "  (wrk took $((SECONDS - started)) s)"
  local rps bad
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$2")
  bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$2")
  ! is_denied "$1" || bad=  # every answer is a 401 there: bench_report.py checks that
  printf '  %-17s %10s req/s   core 0: %3s%%%s\n' "$1" "${rps:-?}" "$share" "${bad:+   NON-2xx: $bad}"
}

# shared_run A B PREFIX SECONDS: A and B loaded at the same time, each by its
# own wrk on the load core; writes PREFIX.A.txt, PREFIX.B.txt and PREFIX.cpu
# (the CPU nanoseconds of A's processes, of B's, and the wall nanoseconds).
shared_run() {
  local a=$1 b=$2 prefix=$3 seconds=$4 pa pb a0 b0 a1 b1 t0 t1 wa wb
  pa=$(under_test "$a")
  pb=$(under_test "$b")
  # shellcheck disable=SC2086
  a0=$(cpu_ns $pa) b0=$(cpu_ns $pb) t0=$(date +%s%N)
  target_headers "$a"
  "${LOAD_PIN[@]}" timeout $((seconds + 30)) wrk -t1 -c"$CONNECTIONS" -d"$seconds"s \
    "${HEADERS[@]}" "$(target_args "$a")" >"$prefix.$a.txt" 2>&1 &
  wa=$!
  target_headers "$b"
  "${LOAD_PIN[@]}" timeout $((seconds + 30)) wrk -t1 -c"$CONNECTIONS" -d"$seconds"s \
    "${HEADERS[@]}" "$(target_args "$b")" >"$prefix.$b.txt" 2>&1 &
  wb=$!
  wait "$wa" || die "wrk against $a, sharing the core with $b (see $prefix.$a.txt)"
  wait "$wb" || die "wrk against $b, sharing the core with $a (see $prefix.$b.txt)"
  # shellcheck disable=SC2086
  a1=$(cpu_ns $pa) b1=$(cpu_ns $pb) t1=$(date +%s%N)
  echo "$((a1 - a0)) $((b1 - b0)) $((t1 - t0))" >"$prefix.cpu"
  python3 "$ROOT/scripts/bench_report.py" shared-line "$prefix" "$a" "$b"
}

# busy_percent: share of all cores busy over the next second (/proc/stat).
busy_percent() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
    busy = y[1] - x[1]; all = busy + y[2] - x[2]; printf "%d", all ? 100 * busy / all : 0 }'
}
# wait_quiet: sets BUSY; with --wait-quiet, first waits (bounded) for other work to end.
wait_quiet() {
  BUSY=$(busy_percent)
  if [ "$BUSY" -ge 10 ] && [ "$WAIT_QUIET" -gt 0 ]; then
    echo "  the machine is ${BUSY}% busy with other work; waiting up to ${WAIT_QUIET} s for it to be idle"
    local deadline=$((SECONDS + WAIT_QUIET))
    while [ "$BUSY" -ge 10 ] && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 4
      BUSY=$(busy_percent)
    done
  fi
}
wait_quiet
echo "machine busy before the runs (all cores, 1 s): ${BUSY}%"
[ "$BUSY" -lt 10 ] || echo "WARNING: other work is running; the figures will be noisy"
BUSY_ROUNDS=()

say "warm-up: ${WARMUP} s of wrk per target (not counted)"
for t in "${TARGETS[@]}"; do wrk_run "$t" "$OUT/raw/warmup-$t.txt" "$WARMUP"; done

say "maximum throughput: wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS alternating round(s)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
  wait_quiet
  BUSY_ROUNDS+=("$BUSY")
  # Even rounds run the targets in reverse order, so that no side of a ratio
  # always runs first (nginx -> us came right before nginx -> bare every time).
  ORDER=("${TARGETS[@]}") ORDER_NOTE=
  if [ $((r % 2)) = 0 ]; then
    ORDER=() ORDER_NOTE="; targets in reverse order"
    for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do ORDER+=("${TARGETS[i]}"); done
  fi
  echo " round $r (machine ${BUSY_ROUNDS[-1]}% busy just before)$ORDER_NOTE"
  for t in "${ORDER[@]}"; do wrk_run "$t" "$OUT/raw/wrk-$t-r$r.txt" "$DURATION"; done
done

if $SHARED_CORE; then
  # Issue 15's pairs (numerator:denominator), from the report's own list;
  # without Redis, not the Redis one.
  PAIRS=()
  while read -r pair; do
    case "$pair" in ours_redis:*) $REDIS || continue ;; esac
    PAIRS+=("$pair")
  done < <(python3 "$ROOT/scripts/bench_report.py" pairs)
  say "one core shared: each pair at the same time on core 0 (a wrk -t1 -c$CONNECTIONS -d${DURATION}s per side on core 1), $ROUNDS round(s)"
  NGX_B=http://127.0.0.1:$NGX2_PORT NGX_B_PID=$NGX2_PID
  for r in $(seq "$ROUNDS"); do
    wait_quiet
    echo " round $r (machine ${BUSY}% busy just before)"
    for pair in "${PAIRS[@]}"; do
      shared_run "${pair%%:*}" "${pair##*:}" "$OUT/raw/shared-${pair%%:*}-vs-${pair##*:}-r$r" "$DURATION"
    done
  done
  NGX_B=$NGX NGX_B_PID=$NGX_PID
fi

if $LATENCY; then
  RATE=${FIXED_RATE:-$(python3 "$ROOT/scripts/bench_report.py" half-max "$OUT")}
  BUSY_LATENCY=()
  if $USE_OHA; then
    GENERATOR=("$OHA" --no-tui --output-format json -z "${DURATION}s" -w -q "$RATE" --latency-correction -c "$CONNECTIONS")
  else
    GENERATOR=("$BIN/open_loop" --rate "$RATE" --duration "$DURATION" --connections "$CONNECTIONS")
  fi
  say "latency at a fixed rate of $RATE req/s (${FIXED_RATE:+set by --rate, not }half our median maximum): ${GENERATOR[0]##*/}, $ROUNDS alternating round(s)"
  for r in $(seq "$ROUNDS"); do
    wait_quiet
    BUSY_LATENCY+=("$BUSY")
    LATENCY_TARGETS=(ours)
    $REDIS && LATENCY_TARGETS+=(ours_redis)
    for t in "${LATENCY_TARGETS[@]}" bare nginx_static; do
      target_headers "$t"
      pids=$(under_test "$t")
      # shellcheck disable=SC2086
      before=$(cpu_ticks $pids)
      t0=$(date +%s%N)
      "${LOAD_PIN[@]}" timeout $((DURATION + 30)) "${GENERATOR[@]}" \
        "${HEADERS[@]}" "$(target_args "$t")" >"$OUT/raw/latency-$t-r$r.json" 2>"$WORK/latency.err" ||
        die "${GENERATOR[0]##*/} against $t: $(tail -n 3 "$WORK/latency.err")"
      # shellcheck disable=SC2086
      after=$(cpu_ticks $pids)
      t1=$(date +%s%N)
      echo $(((after - before) * 100 * 1000000000 / (TICKS_PER_S * (t1 - t0)))) >"$OUT/raw/latency-$t-r$r.json.cpu"
      python3 "$ROOT/scripts/bench_report.py" latency-line "$OUT/raw/latency-$t-r$r.json" "$t $r"
    done
  done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
curl -sS --fail --max-time 5 "$STATS" >"$OUT/raw/okta-after.json" || die "fake Okta counters"
redis_stats after

# The same checks still pass after the load.
check_200 ours "$SVC/oauth2/auth" "${AUTH_HEADERS[@]}" >/dev/null
$REDIS && check_200 ours_redis "$SVCR/oauth2/auth" "${AUTH_HEADERS_REDIS[@]}" >/dev/null
check_200 ours_jwt "$SVCA/oauth2/auth" "${AUTH_HEADERS_JWT[@]}" >/dev/null
check_200 ours_bearer "$SVCA/oauth2/auth" "${AUTH_HEADERS_BEARER[@]}" >/dev/null
$APACHE && check_200 apache "$AP/bench/ok.txt" -H "Cookie: mod_auth_openidc_session=$AP_SESSION" >/dev/null

# ---------------------------------------------------------------------------
# The sign-in path, after the warm runs (each sign-in calls the fake Okta's
# token endpoint, which the warm runs must not): start + /authorize + callback
# pairs per second against the first instance (core 0); the driver and the
# fake Okta share the load core. Also per second of the service's CPU time:
# when the load side cannot keep core 0 busy, that is what one core would do.
say "sign-in path: crates/bench/src/bin/sign_in_load.rs, ${DURATION} s, $ROUNDS round(s)"
cargo build --profile "${PROFILE/debug/dev}" --quiet --bin sign_in_load
for r in $(seq "$ROUNDS"); do
  wait_quiet
  before=$(cpu_ticks "$SVC_PID")
  t0=$(date +%s%N)
  "${LOAD_PIN[@]}" timeout $((DURATION + 30)) "$BIN/sign_in_load" --duration "$DURATION" \
    --concurrency 16 --cookie-name "$COOKIE_NAME" "$SVC" >"$OUT/raw/signin-r$r.txt" 2>"$WORK/signin.err" ||
    die "sign_in_load: $(tail -n 3 "$WORK/signin.err")"
  after=$(cpu_ticks "$SVC_PID")
  t1=$(date +%s%N)
  echo $(((after - before) * 100 * 1000000000 / (TICKS_PER_S * (t1 - t0)))) >"$OUT/raw/signin-r$r.txt.cpu"
  printf '  round %s: %s sign-ins/s, core 0: %s%%\n' "$r" \
    "$(sed -n 's/^SIGN_INS_PER_S=//p' "$OUT/raw/signin-r$r.txt")" "$(cat "$OUT/raw/signin-r$r.txt.cpu")"
done

# ---------------------------------------------------------------------------
versions() {
  echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "cores=$CORES"
  echo "kernel=$(uname -sr)"
  echo "rustc=$(rustc --version)"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes in src/')"
  echo "wrk=$(wrk -v 2>&1 | head -n1 | awk '{ print $2 }')"
  if ! $LATENCY; then
    echo "latency_tool=not run"
  elif $USE_OHA; then
    echo "latency_tool=oha $("$OHA" --version | awk '{ print $2 }') (--latency-correction)"
  else
    echo "latency_tool=crates/bench/src/bin/open_loop.rs"
  fi
  echo "nginx=$(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///')"
  $REDIS && echo "redis=$(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/')"
  if $APACHE; then
    echo "apache=$(/usr/sbin/apache2 -v | awk -F'/' '/Server version/ { print $2 }' | awk '{ print $1 }')"
    echo "mod_auth_openidc=$(dpkg-query -W -f='${Version}' libapache2-mod-auth-openidc 2>/dev/null || echo '?')"
  fi
  echo "pinning=$PINNING"
  echo "connections=$CONNECTIONS"
  echo "duration=$DURATION"
  echo "rounds=$ROUNDS"
  echo "smoke=$SMOKE"
  echo "build=$PROFILE"
  echo "load_before=$LOAD_BEFORE"
  echo "load_after=$LOAD_AFTER"
  echo "busy_before=$BUSY"
  echo "busy_rounds=${BUSY_ROUNDS[*]}"
  echo "busy_latency=${BUSY_LATENCY[*]:-}"
  echo "latency_rate=${RATE:-}"
  echo "latency_rate_fixed=${FIXED_RATE:-}"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
}
versions >"$OUT/raw/meta.txt"

say "results"
python3 "$ROOT/scripts/bench_report.py" report "$OUT"
