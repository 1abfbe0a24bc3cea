# Vault/OpenBao policy for the Transom broker's own identity (AppRole role "transom-broker").
# Least privilege for what app/vault/hvac_backend.py does, one block per request it makes.
# Proven by tests/integration/vault/test_hvac_backend.py::test_approle_broker_runs_every_operation_under_its_policy.
#
# Adapt the two marked paths to the mounts your secrets use: one "read" block per KV v2 mount and per
# dynamic-secrets path Transom may hand out, and the matching sys/leases prefixes.

# --- kind kv: KV v2 reads (ADAPT: one block per mount/prefix that Transom secrets name) ---
path "secret/data/*" {
  capabilities = ["read"]
}

# --- kind token: orphan tokens with the secret's policies ---
# "sudo" is required: without it Vault only lets a token create children whose policies are a subset of its
# own. Consequence: the broker can mint tokens with any policy except root. A tighter alternative (not used
# yet) is a token role with orphan=true and allowed_policies, created through auth/token/create/<role>.
path "auth/token/create-orphan" {
  capabilities = ["update", "sudo"]
}
path "auth/token/renew-accessor" {
  capabilities = ["update"]
}
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
# crash recovery (revoke_by_lease_id): list accessors (needs sudo) and read their metadata
path "auth/token/accessors" {
  capabilities = ["list", "sudo"]
}
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}

# --- kind dynamic: read credentials, then renew/revoke their Vault leases ---
# ADAPT: the engines' credential paths, and the same prefixes under sys/leases/{renew,revoke}/.
path "database/creds/*" {
  capabilities = ["read"]
}
path "sys/leases/renew/database/creds/*" {
  capabilities = ["update"]
}
path "sys/leases/revoke/database/creds/*" {
  capabilities = ["update"]
}

# --- the broker's own token: health() and the re-login check look it up ---
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
