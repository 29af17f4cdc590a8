#!/usr/bin/env bash
# Start RabbitMQ and Redis on 127.0.0.1 when they are not answering, then wait until they do.
# Used by `make services`, `make test`, `make demo` and .ci/run. Starts nothing that answers.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name, seconds, command...
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if (( SECONDS >= deadline )); then
      echo "ensure-services: $name did not answer within ${seconds}s" >&2
      return 1
    fi
    sleep 1
  done
}

redis_ok() { port_open 6379 && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! redis_ok; then
  if ! command -v redis-server >/dev/null; then
    echo "ensure-services: installing redis-server" >&2
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  fi
  echo "ensure-services: starting Redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
wait_for Redis 60 redis_ok

rabbit_ok() { port_open 5672; }

if ! rabbit_ok; then
  if ! command -v rabbitmq-server >/dev/null; then
    echo "ensure-services: installing rabbitmq-server" >&2
    apt-get update -qq && apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  echo "ensure-services: starting RabbitMQ" >&2
  rabbitmq-server -detached
  if command -v rabbitmqctl >/dev/null; then
    rabbitmqctl -q await_startup --timeout 120 || true
  fi
fi
wait_for RabbitMQ 120 rabbit_ok
echo "ensure-services: RabbitMQ and Redis are answering" >&2
