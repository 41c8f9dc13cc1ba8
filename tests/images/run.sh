#!/usr/bin/env bash
# Image tests: build both images (scripts/images.sh, from the artifacts already built on
# this machine) and run them with podman the way Kubernetes would.
#
# One podman pod with no network but its own loopback (a pod's shared network namespace):
#   app      nginx on 127.0.0.1:8080 + curl (tests/images/app.Dockerfile)
#   sidecar  the sidecar image, --cap-drop ALL --cap-add NET_RAW, user 65532, read-only
#            root (and no tmpfs), no-new-privileges, PORTS=8080. Requests curl sends from
#            inside the pod must come out as JSON messages on its stdout; `podman stop`
#            (SIGTERM) must end it with exit code 0. Three ways:
#              podman   as podman starts it (podman also puts NET_RAW in the ambient set);
#              cri      ambient and inheritable sets cleared before exec, as containerd and
#                       CRI-O start a non-root process: only the node binary's file
#                       capability gives NET_RAW (with no_new_privs);
#              no-cap   without NET_RAW in the bounding set: must exit 1 with a clear error.
#   webhook  the webhook image, non-root, read-only, no capabilities, with a certificate
#            from scripts/gen-webhook-certs.sh: the kubelet's probes on the plain-HTTP probe
#            port 8081 (/healthz, /readyz; /metrics not there), /healthz, /readyz and
#            POST /mutate over TLS verified against the generated CA; SIGTERM -> exit 0.
#
# Prints timings and a final "N passed, M failed". Needs root, podman, debootstrap
# (scripts/install-deps.sh images) and the built artifacts (see scripts/images.sh).
# KEEP=1 keeps the pod and the temp directory for a look afterwards.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
here=$repo/tests/images
export CONTAINERS_CONF=$here/containers.conf

t_start=$SECONDS
phase_t=$SECONDS
phase() { echo "images-test: [$((SECONDS - t_start)) s] $*" >&2; phase_t=$SECONDS; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok   $*" >&2; }
bad() { failed=$((failed + 1)); echo "  FAIL $*" >&2; }

# ----------------------------------------------------------------------------- images
phase "building images (scripts/images.sh)"
scripts/images.sh all
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
tag=${IMAGE_TAG:-${version:-dev}}
SIDECAR_IMAGE=localhost/tcp-sniffer-sidecar:$tag
WEBHOOK_IMAGE=localhost/tcp-sniffer-webhook:$tag
APP_IMAGE=localhost/tcp-sniffer-test/app:latest
echo "images-test: images built in $((SECONDS - phase_t)) s" >&2

phase "building the test app image (nginx + curl)"
podman build --isolation=chroot --layers -q -f "$here/app.Dockerfile" \
  --build-arg BASE_IMAGE=localhost/tcp-sniffer-base/debian:bookworm-slim \
  -t "$APP_IMAGE" "$here" >/dev/null

RUN=(podman run --runtime runc --cgroup-manager=cgroupfs --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 --log-driver k8s-file)
pod=tsn-test-$$
tmp=$(mktemp -d)
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "images-test: kept pod $pod and $tmp" >&2
  else
    podman pod rm -f -t 0 "$pod" >/dev/null 2>&1 || true
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

# Certificates for the webhook; readable by its non-root user (Kubernetes does that
# with the Secret volume's defaultMode and fsGroup).
scripts/gen-webhook-certs.sh --out "$tmp/certs" --san localhost --san 127.0.0.1 2>/dev/null
mkdir -p "$tmp/tls"
cp "$tmp/certs/pki/"{ca.crt,tls.crt,tls.key} "$tmp/tls/"
chmod 0755 "$tmp/tls"
chmod 0444 "$tmp/tls/"*

phase "starting pod $pod with the app"
podman pod create --name "$pod" --network none >/dev/null
"${RUN[@]}" -d --pod "$pod" --name "$pod-app" -v "$tmp/tls:/tls:ro" "$APP_IMAGE" >/dev/null
in_app() { podman exec "$pod-app" "$@"; }
for _ in $(seq 50); do
  in_app curl -sf -o /dev/null http://127.0.0.1:8080/ 2>/dev/null && break
  sleep 0.2
done
in_app curl -sf -o /dev/null http://127.0.0.1:8080/ || { podman logs "$pod-app" >&2; echo "images-test: nginx did not start" >&2; exit 1; }

exit_code() { podman inspect --format '{{.State.ExitCode}}' "$1"; }
running() { [ "$(podman inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

# The messages of one sidecar run, checked with Python: every stdout line is JSON, and
# each of our requests (and its response) is there with the right fields.
check_messages() { # file prefix -> prints problems, exit 1 if any
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
path, prefix = sys.argv[1], sys.argv[2]
problems, msgs = [], []
for n, line in enumerate(open(path), 1):
    try:
        msgs.append(json.loads(line))
    except ValueError:
        problems.append(f"stdout line {n} is not JSON: {line[:120]!r}")
reqs = {m["url"]: m for m in msgs if m.get("type") == "request" and m.get("url", "").startswith(prefix)}
want = [f"{prefix}{i}" for i in range(1, 6)] + [f"{prefix}post"]
for url in want:
    r = reqs.get(url)
    if r is None:
        problems.append(f"no request message for {url}")
        continue
    resp = [m for m in msgs if m.get("type") == "response" and m.get("connectionId") == r.get("connectionId") and m.get("sequence") == r.get("sequence")]
    if len(resp) != 1:
        problems.append(f"{url}: {len(resp)} responses with its connectionId/sequence")
        continue
    resp = resp[0]
    if resp.get("statusCode") != 200:
        problems.append(f"{url}: statusCode {resp.get('statusCode')}")
    # The sidecar's stdout is a container log: no bodies unless STDOUT_BODIES=true.
    if resp.get("body") != "" or resp.get("bodySize") != len(f"hello from {url}\n"):
        problems.append(f"{url}: response body {resp.get('body')!r} bodySize {resp.get('bodySize')!r}")
    if r.get("destination", {}).get("port") != 8080:
        problems.append(f"{url}: destination {r.get('destination')}")
    if r.get("pod", {}).get("name") != "test-pod":
        problems.append(f"{url}: pod {r.get('pod')}")
post = reqs.get(f"{prefix}post")
if post and (post.get("method") != "POST" or post.get("body") != "" or post.get("bodySize") != 7):
    problems.append(f"POST: method {post.get('method')!r} body {post.get('body')!r} bodySize {post.get('bodySize')!r}")
for p in problems:
    print(p)
print(f"{len(msgs)} messages, {len(reqs)} of our requests", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

# sidecar_case NAME [podman run flags...] [-- entrypoint override as JSON]
sidecar_case() {
  local name=$1; shift
  local c=$pod-sidecar-$name prefix=/tsn/$name/ t0=$SECONDS
  phase "sidecar ($name)"
  "${RUN[@]}" -d --pod "$pod" --name "$c" \
    --cap-drop ALL --cap-add NET_RAW --user 65532:65532 \
    --read-only --read-only-tmpfs=false --security-opt no-new-privileges \
    -e PORTS=8080 -e POD_NAME=test-pod -e POD_NAMESPACE=test -e NODE_NAME=test-node \
    -e STATS_INTERVAL_MS=1000 \
    "$@" "$SIDECAR_IMAGE" >/dev/null
  # Capture is running once a probe request comes out (the first ones may precede it).
  local up=0
  for i in $(seq 60); do
    running "$c" || break
    in_app curl -sf -o /dev/null "http://127.0.0.1:8080/probe/$i" || true
    if podman logs "$c" 2>/dev/null | grep -q '"url":"/probe/'; then up=1; break; fi
    sleep 0.5
  done
  if [ "$up" != 1 ]; then
    bad "$name: no message for a probe request within 30 s (exit code $(exit_code "$c"))"
    podman logs "$c" 2>&1 | tail -20 >&2
    return
  fi
  ok "$name: capturing $((SECONDS - t0)) s after start"
  for i in 1 2 3 4 5; do in_app curl -sf -o /dev/null "http://127.0.0.1:8080$prefix$i"; done
  in_app curl -sf -o /dev/null -X POST -H 'content-type: application/json' --data '{"n":1}' \
    "http://127.0.0.1:8080${prefix}post"
  for _ in $(seq 50); do
    [ "$(podman logs "$c" 2>/dev/null | grep -c "\"url\":\"$prefix")" -ge 6 ] &&
      [ "$(podman logs "$c" 2>/dev/null | grep -c '"type":"response"')" -ge 7 ] && break
    sleep 0.2
  done
  # What the process runs with.
  local status
  # Read from the host: the image has no cat (nor shell) to run inside it.
  status=$(cat "/proc/$(podman inspect --format '{{.State.Pid}}' "$c")/status")
  local eff amb nnp uid
  eff=$(awk '/^CapEff/ {print $2}' <<<"$status")
  amb=$(awk '/^CapAmb/ {print $2}' <<<"$status")
  nnp=$(awk '/^NoNewPrivs/ {print $2}' <<<"$status")
  uid=$(awk '/^Uid/ {print $2}' <<<"$status")
  if [ "$eff" = 0000000000002000 ] && [ "$nnp" = 1 ] && [ "$uid" = 65532 ]; then
    ok "$name: runs as uid $uid with only CAP_NET_RAW effective (ambient $amb), no_new_privs"
  else
    bad "$name: uid $uid CapEff $eff CapAmb $amb NoNewPrivs $nnp"
  fi
  if [ "$name" = cri ] && [ "$amb" != 0000000000000000 ]; then
    bad "$name: ambient capabilities were not cleared ($amb)"
  fi
  local t_stop=$SECONDS
  podman stop -t 30 "$c" >/dev/null
  local code
  code=$(exit_code "$c")
  if [ "$code" = 0 ]; then ok "$name: SIGTERM -> exit 0 in $((SECONDS - t_stop)) s"; else bad "$name: exit code $code after SIGTERM"; fi
  podman logs "$c" 2>/dev/null >"$tmp/$name.stdout"
  podman logs "$c" 2>&1 >/dev/null | cat >"$tmp/$name.stderr"
  local problems
  if problems=$(check_messages "$tmp/$name.stdout" "$prefix"); then
    ok "$name: all 6 requests and their responses on stdout, as JSON lines"
  else
    bad "$name: messages: $problems"
  fi
  # Logs: JSON lines on stderr, a startup line, and no HTTP body in them.
  if /usr/bin/python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert lines and all({"timestamp", "level", "message"} <= set(l) for l in lines), "not JSON log lines"
' "$tmp/$name.stderr" 2>"$tmp/$name.logcheck" && ! grep -q '"n":1' "$tmp/$name.stderr"; then
    ok "$name: stderr is JSON log lines ($(wc -l <"$tmp/$name.stderr") lines)"
  else
    bad "$name: stderr logs: $(tail -1 "$tmp/$name.logcheck") $(head -c 300 "$tmp/$name.stderr")"
  fi
  podman rm -f "$c" >/dev/null
  echo "images-test: sidecar ($name) took $((SECONDS - t0)) s" >&2
}

# What the sidecar image is: a supported Node LTS (24 or newer), and nothing to run but node.
phase "sidecar image contents"
node_version=$("${RUN[@]}" --rm --network none --entrypoint /usr/local/bin/node "$SIDECAR_IMAGE" --version 2>&1 || true)
node_major=${node_version#v}; node_major=${node_major%%.*}
if [[ "$node_major" =~ ^[0-9]+$ ]] && [ "$node_major" -ge 24 ] && [ $((node_major % 2)) = 0 ]; then
  ok "sidecar image: Node $node_version (an LTS line, 24 or newer)"
else
  bad "sidecar image: Node '$node_version', expected an even (LTS) major >= 24"
fi
if "${RUN[@]}" --rm --network none --entrypoint /bin/sh "$SIDECAR_IMAGE" -c true >/dev/null 2>&1; then
  bad "sidecar image: has a shell (/bin/sh); it should hold node, its libraries and the package only"
else
  ok "sidecar image: no shell (distroless)"
fi

sidecar_case podman
# The image's own ENTRYPOINT behind setpriv, which clears the ambient and inheritable sets.
# The sidecar image is distroless (no setpriv, no shell): a test-only image adds setpriv.
phase "building the sidecar image with setpriv (tests/images/sidecar-cri.Dockerfile)"
CRI_IMAGE=localhost/tcp-sniffer-test/sidecar-cri:$tag
podman build --isolation=chroot --layers -q -f "$here/sidecar-cri.Dockerfile" \
  --build-arg BASE_IMAGE=localhost/tcp-sniffer-base/debian:bookworm-slim \
  --build-arg SIDECAR_IMAGE="$SIDECAR_IMAGE" -t "$CRI_IMAGE" "$here" >/dev/null
cri_entrypoint=$(podman image inspect --format '{{json .Config.Entrypoint}}' "$SIDECAR_IMAGE" |
  /usr/bin/python3 -c 'import json, sys; print(json.dumps(["/usr/bin/setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--"] + json.load(sys.stdin)))')
SIDECAR_IMAGE=$CRI_IMAGE sidecar_case cri --entrypoint "$cri_entrypoint"

phase "sidecar (no-cap): without NET_RAW"
c=$pod-sidecar-nocap
"${RUN[@]}" -d --pod "$pod" --name "$c" --cap-drop ALL --user 65532:65532 \
  --read-only --read-only-tmpfs=false --security-opt no-new-privileges -e PORTS=8080 \
  "$SIDECAR_IMAGE" >/dev/null
code=$(timeout 30 podman wait "$c" || echo timeout)
if [ "$code" = 1 ] && podman logs "$c" 2>&1 | grep -qiE 'permission|not permitted|EPERM|CAP_NET_RAW'; then
  ok "no-cap: exit 1 with a permission error: $(podman logs "$c" 2>&1 | grep -iE 'permission|not permitted' | head -1 | cut -c1-200)"
else
  bad "no-cap: expected exit 1 and a permission error, got $code: $(podman logs "$c" 2>&1 | tail -3)"
fi
podman rm -f "$c" >/dev/null 2>&1 || true

# ----------------------------------------------------------------------------- webhook
phase "webhook over TLS"
c=$pod-webhook
"${RUN[@]}" -d --pod "$pod" --name "$c" --user 65532:65532 --cap-drop ALL \
  --read-only --read-only-tmpfs=false --security-opt no-new-privileges \
  -v "$tmp/tls:/etc/tcp-sniffer-webhook/tls:ro" \
  -e TLS_CERT_FILE=/etc/tcp-sniffer-webhook/tls/tls.crt \
  -e TLS_KEY_FILE=/etc/tcp-sniffer-webhook/tls/tls.key \
  -e SNIFFER_IMAGE="$SIDECAR_IMAGE" -e SHUTDOWN_DELAY_MS=200 \
  "$WEBHOOK_IMAGE" >/dev/null
# The kubelet's probes (deploy/base/deployment.yaml): plain HTTP on the probe port.
probe=
for _ in $(seq 50); do
  probe=$(in_app curl -sS http://127.0.0.1:8081/healthz 2>/dev/null) && break
  running "$c" || break
  sleep 0.2
done
if [ "$probe" = ok ]; then ok "webhook: GET http://127.0.0.1:8081/healthz (probe port) -> ok"; else
  bad "webhook: probe port /healthz answered '$probe'"; podman logs "$c" 2>&1 | tail -10 >&2; fi
probe=$(in_app curl -sS http://127.0.0.1:8081/readyz || true)
if [ "$probe" = ready ]; then ok "webhook: GET http://127.0.0.1:8081/readyz (probe port) -> ready"; else bad "webhook: probe port /readyz answered '$probe'"; fi
probe=$(in_app curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:8081/metrics || true)
if [ "$probe" = 404 ]; then ok "webhook: the probe port serves nothing else (/metrics -> 404)"; else bad "webhook: probe port /metrics answered '$probe'"; fi
healthz=
for _ in $(seq 50); do
  healthz=$(in_app curl -sS --cacert /tls/ca.crt https://localhost:8443/healthz 2>/dev/null) && break
  running "$c" || break
  sleep 0.2
done
if [ "$healthz" = ok ]; then ok "webhook: GET https://localhost:8443/healthz -> ok (verified with the generated CA)"; else
  bad "webhook: /healthz answered '$healthz'"; podman logs "$c" 2>&1 | tail -10 >&2; fi
readyz=$(in_app curl -sS --cacert /tls/ca.crt https://127.0.0.1:8443/readyz || true)
if [ "$readyz" = ready ]; then ok "webhook: GET https://127.0.0.1:8443/readyz -> ready"; else bad "webhook: /readyz answered '$readyz'"; fi
if in_app curl -sS -o /dev/null https://localhost:8443/healthz 2>/dev/null; then
  bad "webhook: a client that does not trust the generated CA got through"
else
  ok "webhook: a client without the generated CA is refused (certificate not trusted)"
fi
review='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"0b9c1d2e-0000-4000-8000-000000000001","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"requestKind":{"group":"","version":"v1","kind":"Pod"},"requestResource":{"group":"","version":"v1","resource":"pods"},"namespace":"demo","operation":"CREATE","userInfo":{"username":"test"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"demo","labels":{"tcp-sniffer.dev/inject":"true"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","ports":[{"containerPort":80}]}]}},"dryRun":false}}'
answer=$(podman exec -i "$pod-app" curl -sS --cacert /tls/ca.crt -H 'content-type: application/json' \
  --data-binary @- https://localhost:8443/mutate <<<"$review" || true)
if /usr/bin/python3 - "$answer" "$SIDECAR_IMAGE" <<'PY' 2>"$tmp/mutate.err"
import base64, json, sys
a = json.loads(sys.argv[1])["response"]
assert a["allowed"] is True and a["uid"] == "0b9c1d2e-0000-4000-8000-000000000001", a
patch = json.loads(base64.b64decode(a["patch"]))
# Native sidecar by default: the first init container, restartPolicy Always (a pod with no
# init containers gets the whole list added).
side = []
for op in patch:
    if op["path"] == "/spec/initContainers":
        side += op["value"]
    elif op["path"].startswith("/spec/initContainers/"):
        side.append(op["value"])
assert side and side[0]["name"] == "tcp-sniffer" and side[0]["image"] == sys.argv[2], patch
assert side[0].get("restartPolicy") == "Always", side[0]
env = {e["name"]: e.get("value") for e in side[0]["env"]}
assert env["PORTS"] == "80", env
PY
then ok "webhook: POST /mutate injects $SIDECAR_IMAGE as a native sidecar with PORTS=80"; else bad "webhook: /mutate: $(cat "$tmp/mutate.err" | tail -2) answer: ${answer:0:300}"; fi
metrics=$(in_app curl -sS --cacert /tls/ca.crt https://localhost:8443/metrics || true)
if grep -q '^tcp_sniffer_webhook_injected_total 1' <<<"$metrics"; then ok "webhook: /metrics counts the injection"; else bad "webhook: /metrics: $(grep injected <<<"$metrics" | head -2)"; fi
t_stop=$SECONDS
podman stop -t 30 "$c" >/dev/null
code=$(exit_code "$c")
if [ "$code" = 0 ]; then ok "webhook: SIGTERM -> exit 0 in $((SECONDS - t_stop)) s"; else bad "webhook: exit code $code after SIGTERM"; podman logs "$c" 2>&1 | tail -5 >&2; fi

# ----------------------------------------------------------------------------- summary
for img in "$SIDECAR_IMAGE" "$WEBHOOK_IMAGE"; do
  echo "images-test: $img $(podman image inspect --format '{{.Size}}' "$img" | awk '{printf "%.1f MB", $1/1e6}')" >&2
done
echo "images-test: total $((SECONDS - t_start)) s" >&2
echo "images: $passed passed, $failed failed"
[ "$failed" = 0 ]
