# Policy "transom-token-guard": Transom adds it to every token it leases (kind token), so the CI job cannot renew
# its own token. Needed because OpenBao renews a token created through a role up to the ROLE's
# token_explicit_max_ttl, not the token's own explicit_max_ttl, and the "default" policy grants renew-self.
# Renewal is the broker's job: it renews only as far as the lease's window and freezes allow (docs/API.md, token).
# "deny" wins over every grant, "default" included; lookup-self stays allowed.
# The token role must list it in allowed_policies (README, "Vault").
path "auth/token/renew-self" {
  capabilities = ["deny"]
}
path "auth/token/renew" {
  capabilities = ["deny"]
}
path "auth/token/renew-accessor" {
  capabilities = ["deny"]
}
