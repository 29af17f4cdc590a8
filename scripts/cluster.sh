#!/usr/bin/env bash
# A local cluster for tests: a Redis Cluster (3 masters + 3 replicas, ports 7101-7106) and a
# 3-node RabbitMQ cluster (AMQP ports 5701-5703), all on 127.0.0.1, from the installed
# Debian packages (redis-server, rabbitmq-server). The default servers (Redis 6379, the
# RabbitMQ node rabbit@localhost on 5672, its cookie) are never touched.
#
#   scripts/cluster.sh start    start both clusters (nothing if they already answer), print URLs
#   scripts/cluster.sh status   exit 0 and print the URLs when both clusters answer, else exit 1
#   scripts/cluster.sh urls     print the URLs as shell assignments (for `eval`)
#   scripts/cluster.sh stop     stop everything it started, remove the state directory
#   scripts/cluster.sh ctl N ARGS...   rabbitmqctl against node N (1-3) with the cluster's cookie
#   scripts/cluster.sh node-stop redis PORT | rabbit N    stop one node (the chaos suite's failures)
#   scripts/cluster.sh node-start redis PORT | rabbit N   start it again; it rejoins its cluster
#   scripts/cluster.sh primaries   the ports of the Redis primaries, one a line
#
# State (data, logs, pid files, the Erlang cookie) lives in ${ORCH_SERV_CLUSTER_DIR:-
# /tmp/orch-serv-cluster}. Start and stop are idempotent.
set -euo pipefail

STATE=${ORCH_SERV_CLUSTER_DIR:-/tmp/orch-serv-cluster}
REDIS_PORTS=(7101 7102 7103 7104 7105 7106)
RABBIT_NODES=(1 2 3)
RABBIT_AMQP_BASE=5700   # node N listens on AMQP 5700+N
RABBIT_DIST_BASE=25700  # node N: Erlang distribution on 25700+N
RABBITMQ_LIB=/usr/lib/rabbitmq/bin
WAIT_SECONDS=${ORCH_SERV_CLUSTER_WAIT:-120}

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # what, command... (retries until WAIT_SECONDS)
  local what=$1; shift
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not come up within ${WAIT_SECONDS}s (logs: $STATE)"
    sleep 0.5
  done
}

node_name() { echo "rabbit-os$1@localhost"; }

redis_url() {
  local hosts=() port
  for port in "${REDIS_PORTS[@]}"; do hosts+=("127.0.0.1:$port"); done
  local IFS=,
  echo "redis+cluster://${hosts[*]}"
}

amqp_urls() {
  local urls=() n
  for n in "${RABBIT_NODES[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$((RABBIT_AMQP_BASE + n))/"); done
  local IFS=,
  echo "${urls[*]}"
}

# --- Redis -------------------------------------------------------------------------------

redis_cli() { redis-cli -h 127.0.0.1 "$@"; }

redis_start_node() {
  local port=$1 dir="$STATE/redis/$1"
  mkdir -p "$dir"
  port_open "$port" && die "port $port is taken by something this script did not start"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000 \
    --save "" --appendonly yes --appendfsync everysec --protected-mode yes >/dev/null
}

redis_cluster_ok() {
  local port
  for port in "${REDIS_PORTS[@]}"; do
    redis_cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
  # every node knows the 6 members (the replicas attached too)
  [ "$(redis_cli -p "${REDIS_PORTS[0]}" cluster nodes | grep -c connected)" -eq "${#REDIS_PORTS[@]}" ]
}

redis_start() {
  local port hosts=()
  for port in "${REDIS_PORTS[@]}"; do
    redis_start_node "$port"
    hosts+=("127.0.0.1:$port")
  done
  for port in "${REDIS_PORTS[@]}"; do wait_for "redis $port" redis_cli -p "$port" ping; done
  redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes >"$STATE/redis/create.log" 2>&1 \
    || { cat "$STATE/redis/create.log" >&2; die "redis-cli --cluster create failed"; }
  wait_for "the Redis Cluster (cluster_state:ok)" redis_cluster_ok
}

redis_stop() {
  local port pid
  for port in "${REDIS_PORTS[@]}"; do
    local pidfile="$STATE/redis/$port/redis.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

# --- RabbitMQ ----------------------------------------------------------------------------

rabbit_env() { # N: RENV := the environment of node N (and of the CLI tools talking to it)
  local n=$1 base="$STATE/rabbit"
  RENV=(HOME="$base/home" \
    RABBITMQ_NODENAME="$(node_name "$n")" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$((RABBIT_AMQP_BASE + n)) \
    RABBITMQ_DIST_PORT=$((RABBIT_DIST_BASE + n)) \
    RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf" \
    RABBITMQ_CONFIG_FILE="$base/node$n.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$base/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$base/mnesia" \
    RABBITMQ_LOG_BASE="$base/log" \
    RABBITMQ_PID_FILE="$base/node$n.pid" \
    ERL_EPMD_ADDRESS=127.0.0.1)
}

rabbitmqctl_n() { # N, args...: rabbitmqctl as this script's user with the cluster's cookie
  local n=$1; shift
  rabbit_env "$n"
  env "${RENV[@]}" "$RABBITMQ_LIB/rabbitmqctl" -n "$(node_name "$n")" "$@"
}

rabbit_prepare() {
  local base="$STATE/rabbit" n
  mkdir -p "$base/home" "$base/mnesia" "$base/log"
  if [ ! -f "$base/home/.erlang.cookie" ]; then
    # a cookie of this cluster's own (the default node's cookie file is left alone)
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$base/home/.erlang.cookie"
    chmod 400 "$base/home/.erlang.cookie"
  fi
  # replaces /etc/rabbitmq/rabbitmq-env.conf (which names the default node)
  echo 'export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"' >"$base/rabbitmq-env.conf"
  echo '[].' >"$base/enabled_plugins"  # no management or prometheus listeners
  echo '[].' >"$base/advanced.config"
  for n in "${RABBIT_NODES[@]}"; do
    cat >"$base/node$n.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$((RABBIT_AMQP_BASE + n))
loopback_users.guest = true
disk_free_limit.absolute = 50MB
cluster_partition_handling = pause_minority
log.file.level = warning
EOF
  done
}

rabbit_start() {
  rabbit_prepare
  local n
  for n in "${RABBIT_NODES[@]}"; do
    port_open $((RABBIT_AMQP_BASE + n)) && die "port $((RABBIT_AMQP_BASE + n)) is taken by something this script did not start"
    rabbit_env "$n"
    (cd "$STATE/rabbit" && exec setsid env "${RENV[@]}" \
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 2:2 +sbwt none +sbwtdcpu none +sbwtdio none" \
      "$RABBITMQ_LIB/rabbitmq-server" >"$STATE/rabbit/log/node$n.out" 2>&1 </dev/null) &
    echo $! >"$STATE/rabbit/node$n.launcher.pid"
  done
  for n in "${RABBIT_NODES[@]}"; do
    wait_for "RabbitMQ node $(node_name "$n")" rabbitmqctl_n "$n" await_startup --timeout 5
  done
  for n in "${RABBIT_NODES[@]:1}"; do
    rabbitmqctl_n "$n" stop_app >/dev/null
    rabbitmqctl_n "$n" join_cluster "$(node_name 1)" >/dev/null
    rabbitmqctl_n "$n" start_app >/dev/null
  done
  wait_for "the RabbitMQ cluster (3 running nodes)" rabbit_cluster_ok
  for n in "${RABBIT_NODES[@]}"; do wait_for "AMQP port $((RABBIT_AMQP_BASE + n))" port_open $((RABBIT_AMQP_BASE + n)); done
}

rabbit_cluster_ok() {
  local running
  running=$(rabbitmqctl_n 1 cluster_status --formatter json 2>/dev/null) || return 1
  local n
  for n in "${RABBIT_NODES[@]}"; do
    grep -q "\"running_nodes\":\[[^]]*\"$(node_name "$n")\"" <<<"$running" || return 1
  done
}

rabbit_stop() {
  local n pid
  [ -d "$STATE/rabbit" ] || return 0
  for n in "${RABBIT_NODES[@]}"; do
    if [ -f "$STATE/rabbit/node$n.pid" ]; then
      rabbitmqctl_n "$n" stop --idempotent >/dev/null 2>&1 &
    fi
  done
  wait
  for n in "${RABBIT_NODES[@]}"; do
    for file in "$STATE/rabbit/node$n.pid" "$STATE/rabbit/node$n.launcher.pid"; do
      [ -f "$file" ] || continue
      pid=$(cat "$file")
      [ -n "$pid" ] || continue
      # only a process of this node (its command line names the node's own directory)
      if kill -0 "$pid" 2>/dev/null && grep -qa "$STATE/rabbit" "/proc/$pid/environ" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    done
  done
}

# --- commands ----------------------------------------------------------------------------

print_urls() {
  echo "ORCH_SERV_CLUSTER_REDIS_URL=$(redis_url)"
  echo "ORCH_SERV_CLUSTER_AMQP_URLS=$(amqp_urls)"
}

cluster_ok() { redis_cluster_ok && rabbit_cluster_ok; }

cmd_start() {
  command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
  [ -x "$RABBITMQ_LIB/rabbitmq-server" ] || die "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
  if [ -d "$STATE" ] && cluster_ok; then
    log "already running ($STATE)"
    print_urls
    return 0
  fi
  [ -d "$STATE" ] && { log "a previous start left $STATE behind: stopping it first"; cmd_stop; }
  mkdir -p "$STATE/redis" "$STATE/rabbit"
  log "starting the Redis Cluster (ports ${REDIS_PORTS[0]}-${REDIS_PORTS[-1]}) and RabbitMQ (AMQP $((RABBIT_AMQP_BASE + 1))-$((RABBIT_AMQP_BASE + ${#RABBIT_NODES[@]})))"
  trap 'log "start failed: stopping what was started"; cmd_stop' ERR
  redis_start
  rabbit_start
  trap - ERR
  log "up"
  print_urls
}

cmd_stop() {
  redis_stop
  rabbit_stop
  rm -rf "$STATE"
  log "stopped"
}

cmd_status() {
  if [ -d "$STATE" ] && cluster_ok; then
    print_urls
    return 0
  fi
  log "not running"
  return 1
}

node_command() { # stop|start, redis PORT | rabbit N
  local action=$1 kind=${2:-} which=${3:-}
  [ -d "$STATE" ] || die "the clusters are not running (scripts/cluster.sh start)"
  case "$kind:$action" in
    redis:stop)
      [[ " ${REDIS_PORTS[*]} " == *" $which "* ]] || die "no Redis node on port '$which'"
      redis_cli -p "$which" shutdown nosave >/dev/null 2>&1 || true
      ;;
    redis:start)
      [[ " ${REDIS_PORTS[*]} " == *" $which "* ]] || die "no Redis node on port '$which'"
      port_open "$which" && return 0
      redis_start_node "$which"  # its nodes.conf and append-only file: it rejoins, with its data
      wait_for "redis $which" redis_cli -p "$which" ping
      ;;
    rabbit:stop)
      [[ "$which" =~ ^[123]$ ]] || die "no RabbitMQ node '$which' (1, 2 or 3)"
      rabbitmqctl_n "$which" stop_app >/dev/null
      ;;
    rabbit:start)
      [[ "$which" =~ ^[123]$ ]] || die "no RabbitMQ node '$which' (1, 2 or 3)"
      rabbitmqctl_n "$which" start_app >/dev/null
      ;;
    *) die "usage: $0 node-stop|node-start redis PORT | rabbit N" ;;
  esac
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  urls) print_urls ;;
  ctl)
    shift
    [[ "${1:-}" =~ ^[123]$ ]] || die "usage: $0 ctl N ARGS... (N = 1, 2 or 3)"
    n=$1; shift
    rabbitmqctl_n "$n" "$@"
    ;;
  node-stop) node_command stop "${2:-}" "${3:-}" ;;
  node-start) node_command start "${2:-}" "${3:-}" ;;
  primaries)
    redis_cli -p "$(for p in "${REDIS_PORTS[@]}"; do port_open "$p" && { echo "$p"; break; }; done)" cluster nodes \
      | awk '$3 ~ /master/ && $3 !~ /fail/ && $8 == "connected" {split($2, a, "[:@]"); print a[2]}' | sort
    ;;
  *) echo "usage: $0 start|stop|status|urls|ctl N ARGS...|node-stop|node-start|primaries" >&2; exit 2 ;;
esac
