// The action's main and post steps as the runner runs them, against the live broker and OpenBao the pytest
// wrapper started (tests/e2e/action/test_github_action.py): the mask lines, the environment file in its
// multiline-safe form, the state carried from main to post, the leases released at Vault after post, and
// post still releasing after main failed or was cancelled.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";

import { Job, admin, leasable, live, stallingTokenEndpoint, unique, vaultTokenWorks } from "./support.mjs";

const PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQ%41IBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
const inputs = (secrets, extra = {}) => ({ url: live.url, audience: live.audience, secrets, ...extra });
const leaseOf = async (id) => await admin("GET", `/v1/leases/${id}`);

function maskLines(stdout) {
  return stdout.split("\n").filter((line) => line.startsWith("::add-mask::"));
}

test("main masks, exports and records; post releases every lease at Vault", async () => {
  const user = unique("user");
  const { kvName, tokenName } = await leasable({ kv: { "tls-key": PEM, db_user: user } });
  const job = new Job();
  const given = inputs(`${kvName}\nDEPLOY_TOKEN=${tokenName}/token\n`, { "env-prefix": "APP_", ttl: "10m" });

  const main = await job.main(given);

  assert.equal(main.code, 0, main.stdout + main.stderr);
  const exported = job.exported();
  assert.deepEqual(Object.keys(exported).sort(), ["APP_DB_USER", "APP_TLS_KEY", "DEPLOY_TOKEN"]);
  assert.equal(exported.APP_TLS_KEY, PEM);
  assert.equal(exported.APP_DB_USER, user);
  assert.ok(await vaultTokenWorks(exported.DEPLOY_TOKEN));

  // The mask lines: every line of every value, escaped as the runner reads workflow commands, and each
  // lease's masks before the line that announces it.
  const masks = maskLines(main.stdout);
  for (const line of ["-----BEGIN PRIVATE KEY-----", "MIIEvQ%2541IBADANBgkqhkiG9w0BAQEFAASC", "-----END PRIVATE KEY-----", user, exported.DEPLOY_TOKEN]) {
    assert.ok(masks.includes(`::add-mask::${line}`), `no mask for ${line.slice(0, 12)}...`);
  }
  const lines = main.stdout.split("\n");
  const firstLeased = lines.findIndex((line) => line.startsWith("transom: leased"));
  assert.ok(lines.indexOf(`::add-mask::${user}`) < firstLeased);
  const unmasked = lines.filter((line) => !line.startsWith("::add-mask::")).join("\n") + main.stderr;
  for (const value of [user, exported.DEPLOY_TOKEN, "MIIEvQ"]) assert.ok(!unmasked.includes(value));

  // The environment file: one NAME<<DELIMITER block per variable, each with its own random delimiter.
  const delimiters = [...job.read("env").matchAll(/^[A-Z_]+<<(.*)$/gm)].map((m) => m[1]);
  assert.equal(delimiters.length, 3);
  assert.equal(new Set(delimiters).size, 3);
  for (const delimiter of delimiters) assert.match(delimiter, /^ghadelimiter_[0-9a-f]{32}$/);

  // Outputs and state.
  const ids = job.outputs()["lease-ids"].split(" ");
  assert.equal(ids.length, 2);
  assert.deepEqual(job.state().lease_ids.split(" "), ids);
  assert.equal(job.state().url, live.url);
  const leases = await Promise.all(ids.map(leaseOf));
  assert.deepEqual(leases.map((l) => l.status), ["active", "active"]);
  const earliest = leases.map((l) => l.expires_at).sort()[0];
  assert.equal(job.outputs()["expires-at"], earliest);

  const post = await job.post(given);

  assert.equal(post.code, 0, post.stdout + post.stderr);
  for (const id of ids) assert.match(post.stdout, new RegExp(`transom: ${id}: released`));
  assert.deepEqual((await Promise.all(ids.map(leaseOf))).map((l) => l.status), ["released", "released"]);
  assert.equal(await vaultTokenWorks(exported.DEPLOY_TOKEN), false);
});

test("a denial fails main with every reason and the next window opening; post releases what was granted", async () => {
  const { kvName, tokenName } = await leasable({ kv: { password: unique("pw") } });
  const opens = new Date(Date.now() + 2 * 3600_000);
  opens.setUTCMilliseconds(0);
  const window = unique("tonight");
  await admin("POST", "/v1/windows", {
    name: window,
    schedule: { type: "once", start: opens.toISOString(), end: new Date(opens.getTime() + 3600_000).toISOString() },
  });
  const closed = unique("closed");
  await admin("POST", "/v1/secrets", { name: closed, kind: "token", policies: ["deploy-prod"] });
  await admin("POST", "/v1/policies", {
    name: unique("closed"), issuer: "github", secrets: [closed], repositories: ["acme/payments"],
    branches: ["release/*"], windows: [window], max_ttl: "1h",
  });
  const job = new Job();
  const given = inputs(`${tokenName}\n${kvName}\n${closed}`);

  const main = await job.main(given);

  assert.equal(main.code, 1);
  const error = main.stdout.split("\n").find((line) => line.startsWith("::error::"));
  assert.ok(error, main.stdout);
  const shown = opens.toISOString().replace(/\.\d+Z$/, "Z");
  assert.match(error, new RegExp(`the lease of "${closed}" was denied`));
  assert.match(error, /%0A  - branch_not_allowed \[policy closed-[0-9a-f]+\]: /);
  assert.match(error, /%0A  - outside_window \[policy closed-[0-9a-f]+\]: /);
  assert.match(error, new RegExp(`%0A  next window opening: ${shown} \\(in (1h 59m|2h)\\)`));
  assert.equal(job.read("env"), ""); // nothing exported
  const granted = job.state().lease_ids.split(" ");
  assert.deepEqual((await Promise.all(granted.map(leaseOf))).map((l) => l.secret), [tokenName, kvName]);

  const post = await job.post(given);

  assert.equal(post.code, 0, post.stdout);
  assert.deepEqual((await Promise.all(granted.map(leaseOf))).map((l) => l.status), ["released", "released"]);
});

test("a key whose name would hijack later steps fails main before anything is exported; post releases", async () => {
  const { kvName } = await leasable({ kv: { "node-options": "--require /tmp/evil.js", region: "eu" } });
  const job = new Job();
  const given = inputs(kvName);

  const main = await job.main(given);

  assert.equal(main.code, 1);
  assert.match(main.stdout, /::error::.*NODE_OPTIONS: a language runtime loads code or options from it/);
  assert.equal(job.read("env"), "");
  const [id] = job.state().lease_ids.split(" ");

  const post = await job.post(given);

  assert.equal(post.code, 0);
  assert.equal((await leaseOf(id)).status, "released");
});

test("post releases the leases of a main step cancelled in the middle", async () => {
  const { kvName, tokenName } = await leasable({ kv: { password: unique("pw") } });
  const stalling = await stallingTokenEndpoint(1); // the second lease's token never comes
  try {
    const job = new Job({ tokenUrl: stalling.url });
    const given = inputs(`${tokenName}\n${kvName}`);
    const main = job.startMain(given);
    await main.waitFor(/transom: leased /);
    main.child.kill("SIGKILL"); // the runner cancelling the job, at its hardest
    const killed = await main.done;
    assert.equal(killed.signal, "SIGKILL");
    const [id] = job.state().lease_ids.split(" ");
    const leased = await leaseOf(id);
    assert.equal(leased.status, "active");

    job.env.ACTIONS_ID_TOKEN_REQUEST_URL = live.tokenUrl;
    const post = await job.post(given);

    assert.equal(post.code, 0, post.stdout);
    assert.equal((await leaseOf(id)).status, "released");
  } finally {
    stalling.close();
  }
});

test("post fails, naming the lease, when the broker cannot be reached to release it", async () => {
  const { tokenName } = await leasable({ kv: { password: unique("pw") } });
  const job = new Job();
  const given = inputs(tokenName);
  assert.equal((await job.main(given)).code, 0);
  const [id] = job.state().lease_ids.split(" ");
  writeFileSync(job.files.state, job.read("state").replace(live.url, "http://127.0.0.1:9")); // the broker gone

  const post = await job.post(given);

  assert.equal(post.code, 1);
  assert.match(post.stdout, new RegExp(`::warning::transom: releasing ${id}: no answer from http://127.0.0.1:9`));
  assert.match(post.stdout, new RegExp(`::error::transom: 1 of 1 lease\\(s\\) not released: ${id}`));
  assert.equal((await leaseOf(id)).status, "active");
  await admin("POST", `/v1/leases/${id}/revoke`, {});
});
