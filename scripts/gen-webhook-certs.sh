#!/usr/bin/env bash
# Makes a CA and a serving certificate for the tcp-sniffer webhook with openssl, and
# writes what deploy/overlays/self-signed needs:
#
#   OUT/webhook-tls-secret.yaml  Secret tcp-sniffer-webhook-tls (type kubernetes.io/tls:
#                                tls.crt, tls.key, ca.crt), mounted by the webhook Deployment
#   OUT/cabundle-patch.yaml      patch that sets caBundle (the CA) on every webhook entry
#   OUT/pki/                     the same as PEM files: ca.crt, ca.key, tls.crt, tls.key
#
# OUT defaults to target/webhook-certs. deploy/overlays/self-signed no longer needs this
# script (the webhook makes its own certificate); it serves local runs and image tests
# (tests/images/run.sh), and your own overlay if you want to bring a CA: the files hold a
# private key, do not commit them.
#
# Re-running keeps the CA in OUT/pki and issues a new serving certificate; the webhook
# reloads it without a restart once the files change. --new-ca replaces the CA too.
#
# Usage: scripts/gen-webhook-certs.sh [--out DIR] [--namespace NS] [--service NAME]
#          [--secret NAME] [--webhook-config NAME] [--days N] [--ca-days N]
#          [--san DNS-or-IP]... [--new-ca]
# Example for a local test of the webhook image:
#   scripts/gen-webhook-certs.sh --out /tmp/certs --san localhost --san 127.0.0.1
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/target/webhook-certs
namespace=tcp-sniffer
service=tcp-sniffer-webhook
secret=tcp-sniffer-webhook-tls
webhook_config=tcp-sniffer
days=365
ca_days=3650
new_ca=0
extra_sans=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "gen-webhook-certs: $1 needs a value" >&2; exit 2; }; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) need "$@"; out=$2; shift 2 ;;
    --namespace) need "$@"; namespace=$2; shift 2 ;;
    --service) need "$@"; service=$2; shift 2 ;;
    --secret) need "$@"; secret=$2; shift 2 ;;
    --webhook-config) need "$@"; webhook_config=$2; shift 2 ;;
    --days) need "$@"; days=$2; shift 2 ;;
    --ca-days) need "$@"; ca_days=$2; shift 2 ;;
    --san) need "$@"; extra_sans+=("$2"); shift 2 ;;
    --new-ca) new_ca=1; shift ;;
    -h|--help) usage ;;
    *) echo "gen-webhook-certs: unknown option $1" >&2; usage ;;
  esac
done

for n in "$days" "$ca_days"; do
  [[ $n =~ ^[1-9][0-9]{0,5}$ ]] || { echo "gen-webhook-certs: --days/--ca-days must be a positive number of days, got $n" >&2; exit 2; }
done
dns1123='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
for v in "$namespace" "$service" "$secret"; do
  [[ $v =~ $dns1123 ]] || { echo "gen-webhook-certs: $v is not a DNS-1123 name" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "gen-webhook-certs: openssl is not installed (scripts/install-deps.sh)" >&2; exit 1; }

# The webhook entries to patch, read from the base so the patch follows the base.
base_mwc=$repo/deploy/base/mutatingwebhookconfiguration.yaml
mapfile -t webhooks < <(sed -n 's/^  - name: \([^ #]*\).*/\1/p' "$base_mwc")
[ ${#webhooks[@]} -gt 0 ] || { echo "gen-webhook-certs: no webhook names found in $base_mwc" >&2; exit 1; }

pki=$out/pki
mkdir -p "$pki"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- CA (kept across runs unless --new-ca) ---
if [ "$new_ca" = 1 ] || [ ! -s "$pki/ca.key" ] || [ ! -s "$pki/ca.crt" ]; then
  cat >"$work/ca.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = ${service}-ca
O = tcp-sniffer
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$ca_days" \
    -config "$work/ca.cnf" -out "$work/ca.crt"
  mv -f "$work/ca.key" "$pki/ca.key"
  mv -f "$work/ca.crt" "$pki/ca.crt"
  chmod 644 "$pki/ca.crt"
  echo "gen-webhook-certs: new CA in $pki/ca.crt" >&2
else
  echo "gen-webhook-certs: reusing the CA in $pki/ca.crt (--new-ca replaces it)" >&2
fi

# --- serving certificate for the Service's DNS names ---
sans=("DNS:$service" "DNS:$service.$namespace" "DNS:$service.$namespace.svc"
      "DNS:$service.$namespace.svc.cluster.local")
for s in "${extra_sans[@]}"; do
  if [[ $s =~ ^[0-9.]+$ || $s == *:* ]]; then sans+=("IP:$s"); else sans+=("DNS:$s"); fi
done
san_line=$(IFS=,; echo "${sans[*]}")
cat >"$work/server.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = $service.$namespace.svc
O = tcp-sniffer
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san_line
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/tls.key" 2>/dev/null
openssl req -new -key "$work/tls.key" -config "$work/server.cnf" -out "$work/tls.csr"
openssl x509 -req -in "$work/tls.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -sha256 -days "$days" \
  -extfile "$work/server.cnf" -extensions v3_server -out "$work/tls.crt" 2>/dev/null
openssl verify -CAfile "$pki/ca.crt" "$work/tls.crt" >/dev/null
mv -f "$work/tls.key" "$pki/tls.key"
mv -f "$work/tls.crt" "$pki/tls.crt"
chmod 644 "$pki/tls.crt"

b64() { base64 -w0 <"$1"; }

# --- manifests (written to a temp name and renamed: never half-written) ---
umask 022
cat >"$work/secret.yaml" <<YAML
# Written by scripts/gen-webhook-certs.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Holds a private key: do not commit.
apiVersion: v1
kind: Secret
metadata:
  name: $secret
  namespace: $namespace
  labels:
    app.kubernetes.io/name: tcp-sniffer-webhook
    app.kubernetes.io/component: webhook
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$pki/tls.crt")
  tls.key: $(b64 "$pki/tls.key")
  ca.crt: $(b64 "$pki/ca.crt")
YAML
{
  echo "# Written by scripts/gen-webhook-certs.sh: the CA that signed the webhook's serving certificate."
  echo "apiVersion: admissionregistration.k8s.io/v1"
  echo "kind: MutatingWebhookConfiguration"
  echo "metadata:"
  echo "  name: $webhook_config"
  echo "webhooks:"
  for w in "${webhooks[@]}"; do
    echo "  - name: $w"
    echo "    clientConfig:"
    echo "      caBundle: $(b64 "$pki/ca.crt")"
  done
} >"$work/cabundle.yaml"
chmod 600 "$work/secret.yaml"
mv -f "$work/secret.yaml" "$out/webhook-tls-secret.yaml"
mv -f "$work/cabundle.yaml" "$out/cabundle-patch.yaml"

echo "gen-webhook-certs: wrote $out/webhook-tls-secret.yaml, $out/cabundle-patch.yaml and $pki/ (certificate for ${san_line//DNS:/}, valid $days days)" >&2
