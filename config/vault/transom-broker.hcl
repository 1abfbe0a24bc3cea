# Vault/OpenBao policy for the Transom broker's own identity (AppRole role "transom-broker").
# Least privilege for what app/vault/hvac_backend.py does, one block per request it makes.
# Proven by tests/integration/vault/test_broker_policy.py (AppRole holding exactly this policy).
#
# Adapt the two marked paths to the mounts your secrets use: one "read" block per KV v2 mount and per
# dynamic-secrets path Transom may hand out, and the matching sys/leases prefixes.

# --- kind kv: KV v2 reads (ADAPT: one block per mount/prefix that Transom secrets name) ---
path "secret/data/*" {
  capabilities = ["read"]
}

# --- kind token: through the token role "transom-lease" (TRANSOM_VAULT_TOKEN_ROLE), never create-orphan ---
# The role is the bound: create it first (README, "Vault"), e.g.
#   bao write auth/token/roles/transom-lease orphan=true renewable=true token_type=service \
#       allowed_policies="deploy-prod,deploy-staging,transom-token-guard" token_explicit_max_ttl=24h
# No sudo on create: with sudo Vault would let the broker choose a token id and, on a role without
# allowed_policies, any policy. Without it, a policy outside allowed_policies is refused by Vault itself.
# If you rename the role, rename it in every path below. Leave its path_suffix unset (the broker finds each
# token's Vault lease directly under auth/token/create/<role>/).
path "auth/token/create/transom-lease" {
  capabilities = ["update"]
}
# POST/PUT /v1/secrets read the role to refuse, with a clear 400, policies it does not allow.
path "auth/token/roles/transom-lease" {
  capabilities = ["read"]
}
# Right after issue, the broker looks the new token up by value (only a holder of the token can; it does not
# use up num_uses) for its issue time, which Vault also stamps on the token's lease. The lease id itself (an
# HMAC under Vault's own salt) is found only when the token must be revoked, and by crash recovery: list the
# role's leases and read their issue times (lease_id restricted to the role). That listing grows with the
# live tokens, so it stays off the request path (issue 14; docs/ARCHITECTURE.md, "The flow of a lease").
path "auth/token/lookup" {
  capabilities = ["update"]
}
path "sys/leases/lookup/auth/token/create/transom-lease/" {
  capabilities = ["list", "sudo"]
}
path "sys/leases/lookup" {
  capabilities = ["update"]
  allowed_parameters = {
    "lease_id" = ["auth/token/create/transom-lease/*"]
  }
}
# Revoke: only leases under the role's path, i.e. only tokens the broker issued through it. auth/token/revoke
# (by value) revokes a token the broker just created and could not map.
path "sys/leases/revoke/auth/token/create/transom-lease/*" {
  capabilities = ["update"]
}
path "auth/token/revoke" {
  capabilities = ["update"]
}
# Renew: Vault refuses to renew a token through sys/leases, so by accessor. Vault scopes this neither to the
# role nor to the token's own explicit max TTL (OpenBao caps a role token's renewal at the role's
# token_explicit_max_ttl only); the broker cannot list or look up accessors, renews only its leases' tokens,
# as far as their windows allow, and the tokens cannot renew themselves (transom-token-guard.hcl).
path "auth/token/renew-accessor" {
  capabilities = ["update"]
}
# Not granted (issue 18): auth/token/create-orphan (sudo: any policy), auth/token/accessors (every token),
# auth/token/lookup-accessor and auth/token/revoke-accessor (any token whose accessor is known).

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

# --- the audit log's checkpoints: signed by Vault's transit engine; the key never leaves Vault ---
# Create it once (README, "The audit log's signing key"):
#   bao secrets enable transit && bao write -f transit/keys/transom-ledger type=ed25519
# The broker signs with it and reads its public half (for GET /v1/audit/key and to check each signature).
path "transit/sign/transom-ledger" {
  capabilities = ["update"]
}
path "transit/keys/transom-ledger" {
  capabilities = ["read"]
}
