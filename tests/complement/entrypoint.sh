#!/bin/sh
# Complement's contract: SERVER_NAME is given at run time; client API on 8008
# (HTTP), federation on 8448 (HTTPS, certificate signed by Complement's CA at
# /complement/ca); open registration and shared secret "complement". This
# runs again each time Complement restarts a container or starts one from a
# committed blueprint: everything made on the first run (keys, certificate,
# database) is kept and reused.
set -eu
: "${SERVER_NAME:=localhost}"
conf=/conf
mkdir -p "$conf" /data

# Outgoing federation (and anything else pvyhs fetches) trusts Complement's CA.
if [ -f /complement/ca/ca.crt ]; then
  cp /complement/ca/ca.crt /usr/local/share/ca-certificates/complement.crt
  update-ca-certificates >/dev/null 2>&1 || true
fi

# The federation certificate, for SERVER_NAME, signed by that CA.
if [ ! -f "$conf/tls.crt" ] || [ ! -f "$conf/tls.key" ]; then
  if [ -f /complement/ca/ca.key ]; then
    openssl genrsa -out "$conf/tls.key" 2048 2>/dev/null
    openssl req -new -sha256 -key "$conf/tls.key" -subj "/CN=$SERVER_NAME" -out "$conf/tls.csr"
    printf 'subjectAltName=DNS:%s\n' "$SERVER_NAME" >"$conf/san.ext"
    openssl x509 -req -in "$conf/tls.csr" -CA /complement/ca/ca.crt -CAkey /complement/ca/ca.key \
      -CAcreateserial -CAserial "$conf/ca.srl" -out "$conf/tls.crt" -days 2 -sha256 \
      -extfile "$conf/san.ext" 2>/dev/null
  else
    # Not under Complement (manual docker run): a self-signed certificate.
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$conf/tls.key" -out "$conf/tls.crt" \
      -days 2 -subj "/CN=$SERVER_NAME" -addext "subjectAltName=DNS:$SERVER_NAME" 2>/dev/null
  fi
fi

# Application services Complement registers are dropped in /complement/appservice.
as_files=""
for f in /complement/appservice/*.yaml; do
  [ -f "$f" ] && as_files="$as_files
  - $f"
done
[ -n "$as_files" ] || as_files=" []"

ca_list=" []"
[ -f /complement/ca/ca.crt ] && ca_list="
  - /complement/ca/ca.crt"

# Rate limits out of the way (as Synapse's Complement config does): tests
# register, log in, join and send far faster than people.
rl='{per_second: 9999, burst_count: 9999}'
cat >"$conf/homeserver.yaml" <<YAML
server_name: "$SERVER_NAME"
public_baseurl: "http://$SERVER_NAME:8008/"
listeners:
  - port: 8008
    bind_addresses: ['0.0.0.0']
    tls: false
    resources:
      - names: [client, federation, keys, media]
  - port: 8448
    bind_addresses: ['0.0.0.0']
    tls: true
    resources:
      - names: [client, federation, keys, media]
tls_certificate_path: $conf/tls.crt
tls_private_key_path: $conf/tls.key
data_dir: /data
signing_key_path: $conf/signing.key
media_encryption_key_path: $conf/media.key
log_level: ${PVYHS_LOG_LEVEL:-info}
enable_registration: true
enable_registration_without_verification: true
registration_shared_secret: complement
allow_guest_access: true
allow_public_rooms_without_auth: true
allow_public_rooms_over_federation: true
url_preview_enabled: true
url_preview_ip_range_blacklist: []
federation_verify_certificates: true
federation_custom_ca_list:$ca_list
ip_range_blacklist: []
trusted_key_servers: []
app_service_config_files:$as_files
rc_message: $rl
rc_registration: $rl
rc_login: {address: $rl, account: $rl, failed_attempts: $rl}
rc_joins: {local: $rl, remote: $rl}
rc_invites: {per_room: $rl, per_user: $rl}
rc_knocks: {per_user: $rl, per_room: $rl}
rc_admin_redaction: $rl
# As Complement's own Synapse config has it (its key-query tests read names).
allow_device_name_lookup_over_federation: true
# As Complement's own Synapse config has it (TestServerNotices waits for an
# invite from @_server, the system user).
server_notices:
  system_mxid_localpart: _server
  system_mxid_display_name: "Server Alert"
  system_mxid_avatar_url: ""
  room_name: "Server Alert"
YAML
# Extra keys for one run (keys not set above), passed through Complement as
# PASS_PVYHS_EXTRA_CONFIG (run.sh sets COMPLEMENT_SHARE_ENV_PREFIX=PASS_).
[ -n "${PVYHS_EXTRA_CONFIG:-}" ] && printf '%s\n' "$PVYHS_EXTRA_CONFIG" >>"$conf/homeserver.yaml"

exec /usr/local/bin/pvyhs serve --config "$conf/homeserver.yaml"
