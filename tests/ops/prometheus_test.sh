#!/usr/bin/env bash
# A real Prometheus scrapes `fission serve`, and its query API shows the
# fold's figures: the alert rules load, and the numbers are the ones the
# ingest reported. Also runs promtool over the rules and their unit tests.
#
#   tests/ops/prometheus_test.sh FISSION_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
for tool in prometheus promtool curl jq; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (bash ops/dev.sh test installs it)"; exit 1; }
done

promtool check rules "$src/ops/prometheus/fission.rules.yml"
(cd "$src/ops/prometheus" && promtool test rules fission.rules.test.yml)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "FAIL: no free port" >&2
  exit 1
}

"$bin" generate --members 400 --days 6 --out "$work/events.jsonl" --rules-out "$work/rules.json" >/dev/null
"$bin" ingest --quiet --data-dir "$work/data" --rules "$work/rules.json" "$work/events.jsonl"
lines=$(grep -c '' "$work/events.jsonl")

api_port=$(free_port)
"$bin" serve --data-dir "$work/data" --rules "$work/rules.json" --listen "127.0.0.1:$api_port" 2>"$work/serve.log" &
pids+=($!)

prom_port=$(free_port)
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $src/ops/prometheus/fission.rules.yml
scrape_configs:
  - job_name: fission-serve
    static_configs:
      - targets: ['127.0.0.1:$api_port']
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)

# The value of an instant query, or "" while there is none.
query() {
  curl -sf --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p'
}

offered=""
for _ in $(seq 1 90); do
  offered=$(query 'fission_events_offered_total{job="fission-serve"}' || true)
  [ -n "$offered" ] && break
  sleep 1
done
if [ -z "$offered" ]; then
  echo "FAIL: Prometheus never saw fission_events_offered_total"
  tail -20 "$work/prometheus.log" "$work/serve.log"
  exit 1
fi
sleep 3  # a few more scrapes: the first one cannot count itself
fail=0
check() {  # name expected actual
  if [ "$2" = "$3" ]; then echo "ok: $1 = $3"; else echo "FAIL: $1: expected $2, Prometheus has $3"; fail=1; fi
}
check "fission_events_offered_total (lines ingested)" "$lines" "$offered"
check "up" 1 "$(query 'up{job="fission-serve"}')"
applied=$(query 'sum(fission_events_applied_total{job="fission-serve"})')
health=$(curl -sf "http://127.0.0.1:$api_port/healthz" | sed -n 's/.*"applied": \([0-9]*\).*/\1/p')
check "sum(fission_events_applied_total) against /healthz" "$health" "$applied"
payments=$(query 'fission_events_applied_total{job="fission-serve",type="payment"}')
[ "${payments:-0}" -gt 0 ] && echo "ok: payments applied = $payments" || { echo "FAIL: no payments in Prometheus"; fail=1; }
disk=$(query 'fission_data_dir_bytes{job="fission-serve"}')
[ "${disk:-0}" -gt 0 ] && echo "ok: data dir bytes = $disk" || { echo "FAIL: no data dir size"; fail=1; }
requests=$(query 'sum(fission_http_requests_total{job="fission-serve",route="/metrics"})')
[ "${requests:-0}" -gt 0 ] && echo "ok: scrapes counted = $requests" || { echo "FAIL: no HTTP request counts"; fail=1; }
rules=$(curl -sf "http://127.0.0.1:$prom_port/api/v1/rules" | grep -o '"health":"ok"' | wc -l)
check "alert rules loaded and healthy" 5 "$rules"
# Every query of the Grafana dashboard is valid PromQL over these metrics.
dash="$src/ops/grafana/fission-dashboard.json"
n=0
while IFS= read -r expr; do
  expr=${expr//\$job/.*}
  expr=${expr//\$instance/.*}
  status=$(curl -s --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$expr" | jq -r .status)
  if [ "$status" != success ]; then echo "FAIL: dashboard query does not run: $expr"; fail=1; fi
  n=$((n + 1))
done < <(jq -r '.panels[].targets[].expr' "$dash")
[ "$n" -gt 10 ] && echo "ok: $n dashboard queries run" || { echo "FAIL: only $n dashboard queries"; fail=1; }
exit $fail
