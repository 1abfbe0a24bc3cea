// The action's rules without a broker: inputs, names, masks, the environment file's form, denial messages.
import assert from "node:assert/strict";
import { test } from "node:test";

import { nextOpening, refusalLines } from "../../action/lib/broker.mjs";
import { dangerous } from "../../action/lib/envguard.mjs";
import { parseSecrets, parseTtl } from "../../action/lib/inputs.mjs";
import { defaultName, environmentFor } from "../../action/lib/naming.mjs";
import { escapeData, heredoc, maskCommands } from "../../action/lib/runner.mjs";
import { parseFileCommands } from "./support.mjs";

test("secrets: bare names, NAME=secret/key lines, comments; every problem at once", () => {
  const parsed = parseSecrets("prod-db\n# a comment\n\nPGPASSWORD=prod-db/password\nTOKEN=vault-token/token\n");
  assert.deepEqual(parsed.order, ["prod-db", "vault-token"]);
  assert.deepEqual([...parsed.whole], ["prod-db"]);
  assert.deepEqual(parsed.names, [
    { name: "PGPASSWORD", secret: "prod-db", key: "password" },
    { name: "TOKEN", secret: "vault-token", key: "token" },
  ]);
  assert.deepEqual(parsed.problems, []);

  const bad = parseSecrets("Prod DB\n1X=prod-db/k\nNAME=prod-db\n");
  assert.deepEqual(bad.problems, [
    'secrets, line 1: "Prod DB" is not a secret name',
    'secrets, line 2: "1X" is not a variable name (A-Z, 0-9, _)',
    "secrets, line 3: expected NAME=secret/key",
  ]);
  assert.deepEqual(parseSecrets(" \n# only a comment").problems, ["secrets: name at least one secret"]);
});

test("ttl: whole seconds as a number, a duration as it is, nothing when empty", () => {
  assert.equal(parseTtl("900"), 900);
  assert.equal(parseTtl("20m"), "20m");
  assert.equal(parseTtl(""), undefined);
});

test("default names follow the Python client's", () => {
  assert.equal(defaultName("db-password"), "DB_PASSWORD");
  assert.equal(defaultName("tls.key", "APP_"), "APP_TLS_KEY");
  assert.equal(defaultName("2fa"), "_2FA");
});

test("explicit names bypass the guard, default names do not; only the keys a secret's lines name", () => {
  const secrets = parseSecrets("a\nNODE_OPTIONS=b/opts\n");
  const leases = [
    { secret: "a", data: { user: "u", port: 5432 } },
    { secret: "b", data: { opts: "--max-old-space-size=4096", other: "not exported" } },
  ];
  assert.deepEqual(environmentFor(leases, secrets, "", {}), {
    USER: "u",
    PORT: "5432",
    NODE_OPTIONS: "--max-old-space-size=4096",
  });
  assert.throws(() => environmentFor(leases, secrets, "", { USER: "runner" }), (error) => {
    assert.match(error.text, /a\/user would be \$USER: the job's environment already sets it/);
    return true;
  });
});

test("collisions, NUL characters, hijacking names and missing keys are refused together", () => {
  const secrets = parseSecrets("a\nb\nX=a/missing\n");
  const leases = [
    { secret: "a", data: { "db-user": "1", ld_preload: "/tmp/x.so" } },
    { secret: "b", data: { db_user: "2", nul: "a\0b" } },
  ];
  assert.throws(() => environmentFor(leases, secrets, "", {}), (error) => {
    assert.match(error.message, /nothing was exported/);
    assert.deepEqual(error.lines, [
      "X=a/missing: the secret has no such key",
      "a/db-user and b/db_user would both be $DB_USER",
      "b/nul holds a NUL character, which no environment variable can",
      "a/ld_preload would be $LD_PRELOAD: it decides which programs and libraries run",
      "a key's name comes from the secret at Vault; to use such a name anyway, name it with a NAME=secret/key line",
    ]);
    return true;
  });
});

test("a key that looks like a workflow command is shown quoted in a refusal", () => {
  const leases = [{ secret: "a", data: { "::stop-commands::x": "v", "__stop-commands__x": "w" } }];
  assert.throws(() => environmentFor(leases, parseSecrets("a"), "", {}), (error) => {
    assert.deepEqual(error.lines, ['a/"::stop-commands::x" and a/__stop-commands__x would both be $__STOP_COMMANDS__X']);
    return true;
  });
});

test("the guard is case-insensitive and knows prefixes", () => {
  assert.equal(dangerous("path"), "it decides which programs and libraries run");
  assert.equal(dangerous("GITHUB_TOKEN"), "the CI runner or this client reads it (token endpoints, step files, lease ids)");
  assert.equal(dangerous("DATABASE_URL"), null);
});

test("masks: one per non-blank line, escaped like workflow command data, each line once", () => {
  assert.equal(escapeData("50%\r\nx"), "50%25%0D%0Ax");
  assert.deepEqual(maskCommands(["line one\r\nline%two\n\n   \nline one", "single"]), [
    "::add-mask::line one",
    "::add-mask::line%25two",
    "::add-mask::single",
  ]);
});

test("the environment file's blocks survive any value, and the runner's reading gives it back", () => {
  const tricky = "first\nghadelimiter_x\nEOF\nNAME=injected\n";
  const text = heredoc("A", tricky) + heredoc("B", "") + heredoc("C", "x<<y");
  assert.deepEqual(parseFileCommands(text), { A: tricky, B: "", C: "x<<y" });
  assert.notEqual(heredoc("A", "v").split("\n")[0], heredoc("A", "v").split("\n")[0]); // random delimiters
});

test("a denial names every reason with its policy, and the earliest next opening", () => {
  const now = new Date("2026-12-01T08:00:00Z");
  const problem = {
    reasons: [
      { code: "branch_not_allowed", message: "branch feature/x is not allowed", policy: "deploy-prod" },
      { code: "outside_window", message: "outside the windows (a); the next opening is at 2026-12-01T10:00:00Z", policy: "a" },
      { code: "freeze_active", message: "frozen; the next opening is at 2026-12-01T09:30:00.250Z", policy: "b" },
    ],
  };
  assert.deepEqual(refusalLines(problem, now), [
    "- branch_not_allowed [policy deploy-prod]: branch feature/x is not allowed",
    "- outside_window [policy a]: outside the windows (a); the next opening is at 2026-12-01T10:00:00Z",
    "- freeze_active [policy b]: frozen; the next opening is at 2026-12-01T09:30:00.250Z",
    "next window opening: 2026-12-01T09:30:00Z (in 1h 30m)",
  ]);
  assert.equal(nextOpening([{ code: "no_policy", message: "no policy" }]), null);
  assert.deepEqual(refusalLines({ reasons: [{ code: "no_policy", message: "no policy allows this" }] }, now), [
    "- no_policy: no policy allows this",
  ]);
});
