// Imitating the GitHub Actions runner around the action's steps, and the live broker and OpenBao the
// pytest wrapper (tests/e2e/action/test_github_action.py) started: INPUT_* variables, GITHUB_ENV,
// GITHUB_OUTPUT and GITHUB_STATE files read back the way the runner reads them, STATE_* handed from main to
// post, and ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN served by an endpoint that mints real ID tokens from the
// suite's issuer.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const MAIN = join(ROOT, "action", "main.mjs");
export const POST = join(ROOT, "action", "post.mjs");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/e2e/action/test_github_action.py`);
  return value;
}

export const live = {
  get url() { return required("TRANSOM_TEST_URL"); },
  get adminToken() { return required("TRANSOM_TEST_ADMIN_TOKEN"); },
  get audience() { return required("TRANSOM_TEST_AUDIENCE"); },
  get tokenUrl() { return required("TRANSOM_TEST_ID_TOKEN_URL"); },
  get tokenBearer() { return required("TRANSOM_TEST_ID_TOKEN_BEARER"); },
  get vaultAddr() { return required("TRANSOM_TEST_VAULT_ADDR"); },
  get vaultToken() { return required("TRANSOM_TEST_VAULT_TOKEN"); },
};

export const unique = (stem) => `${stem}-${randomBytes(4).toString("hex")}`;

// --- the runner's file commands ----------------------------------------------------------------------------

// `NAME=value` lines and `NAME<<DELIMITER` blocks, as the runner reads GITHUB_ENV, GITHUB_OUTPUT and
// GITHUB_STATE; a later entry for a name replaces an earlier one. Throws on what the runner would reject.
export function parseFileCommands(text) {
  const entries = new Map();
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const heredoc = line.indexOf("<<");
    const equals = line.indexOf("=");
    if (heredoc > 0 && (equals === -1 || heredoc < equals)) {
      const name = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      const value = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]);
      if (i >= lines.length) throw new Error(`no closing delimiter for ${name}`);
      entries.set(name, value.join("\n"));
    } else if (equals > 0) {
      entries.set(line.slice(0, equals), line.slice(equals + 1));
    } else {
      throw new Error(`a line the runner cannot read: ${JSON.stringify(line)}`);
    }
  }
  return Object.fromEntries(entries);
}

// --- the job ---------------------------------------------------------------------------------------------

// One job: its step files, and the environment every step of it gets. `runStep` runs main or post with the
// action's inputs; post gets the state main saved, as STATE_<name>.
export class Job {
  constructor({ tokenUrl = live.tokenUrl, extraEnv = {} } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "transom-action-"));
    this.files = {};
    for (const name of ["env", "output", "state", "post-env", "post-output", "post-state"]) {
      this.files[name] = join(this.dir, name);
      writeFileSync(this.files[name], "");
    }
    this.env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? this.dir,
      CI: "true",
      GITHUB_ACTIONS: "true",
      RUNNER_TEMP: this.dir,
      ACTIONS_ID_TOKEN_REQUEST_URL: tokenUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: live.tokenBearer,
      ...extraEnv,
    };
  }

  inputEnv(inputs) {
    return Object.fromEntries(Object.entries(inputs).map(([name, value]) => [`INPUT_${name.replace(/ /g, "_").toUpperCase()}`, value]));
  }

  startMain(inputs) {
    const env = { ...this.env, ...this.inputEnv(inputs), GITHUB_ENV: this.files.env, GITHUB_OUTPUT: this.files.output, GITHUB_STATE: this.files.state };
    return start(MAIN, env);
  }

  async main(inputs) {
    return await this.startMain(inputs).done;
  }

  async post(inputs) {
    const state = Object.fromEntries(Object.entries(this.state()).map(([name, value]) => [`STATE_${name}`, value]));
    const env = {
      ...this.env, ...this.inputEnv(inputs), ...state,
      GITHUB_ENV: this.files["post-env"], GITHUB_OUTPUT: this.files["post-output"], GITHUB_STATE: this.files["post-state"],
    };
    return await start(POST, env).done;
  }

  read(name) { return readFileSync(this.files[name], "utf8"); }
  exported() { return parseFileCommands(this.read("env")); }
  outputs() { return parseFileCommands(this.read("output")); }
  state() { return parseFileCommands(this.read("state")); }
}

// A step's process: `lines` fills as it writes; `done` resolves to {code, signal, stdout, stderr}.
function start(script, env) {
  const child = spawn(process.execPath, [script], { env, stdio: ["ignore", "pipe", "pipe"] });
  const step = { child, stdout: "", stderr: "", waiters: [] };
  child.stdout.on("data", (chunk) => {
    step.stdout += chunk;
    for (const waiter of step.waiters) waiter();
  });
  child.stderr.on("data", (chunk) => (step.stderr += chunk));
  step.done = new Promise((resolveDone) => child.on("close", (code, signal) => resolveDone({ code, signal, stdout: step.stdout, stderr: step.stderr })));
  // Resolves once stdout holds a line matching `pattern`.
  step.waitFor = (pattern) => new Promise((resolveWait) => {
    const check = () => pattern.test(step.stdout) && resolveWait();
    step.waiters.push(check);
    check();
  });
  return step;
}

// --- the broker and OpenBao --------------------------------------------------------------------------------

export async function admin(method, path, body) {
  const response = await fetch(live.url + path, {
    method,
    headers: { Authorization: `Bearer ${live.adminToken}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (response.status >= 300) throw new Error(`${method} ${path}: HTTP ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

export async function writeKv(path, data) {
  const response = await fetch(`${live.vaultAddr}/v1/secret/data/${path}`, {
    method: "POST",
    headers: { "X-Vault-Token": live.vaultToken, "Content-Type": "application/json" },
    body: JSON.stringify({ data }),
  });
  if (!response.ok) throw new Error(`writing secret/${path} at OpenBao: HTTP ${response.status}`);
}

export async function vaultTokenWorks(token) {
  const response = await fetch(`${live.vaultAddr}/v1/auth/token/lookup-self`, { headers: { "X-Vault-Token": token } });
  return response.status === 200;
}

// A KV secret and a token secret under a policy of their own (the suite's issuer `github`, the repository and
// branch of its tokens, always open); extra policy fields override.
export async function leasable({ kv, policy = {} }) {
  const kvName = unique("kv");
  const tokenName = unique("token");
  const path = `action/${kvName}`;
  await writeKv(path, kv);
  await admin("POST", "/v1/secrets", { name: kvName, kind: "kv", mount: "secret", path });
  await admin("POST", "/v1/secrets", { name: tokenName, kind: "token", policies: ["deploy-prod"] });
  await admin("POST", "/v1/policies", {
    name: unique("action"), issuer: "github", secrets: [kvName, tokenName], repositories: ["acme/payments"],
    branches: ["main"], windows: ["always"], default_ttl: "15m", max_ttl: "1h", ...policy,
  });
  return { kvName, tokenName };
}

// ACTIONS_ID_TOKEN_REQUEST_URL that passes the first `passes` requests on to the real endpoint and holds every
// later one unanswered: a main step waiting on it is "in the middle" of its leases for as long as a test
// needs.
export async function stallingTokenEndpoint(passes) {
  let seen = 0;
  const held = [];
  const server = createServer(async (request, response) => {
    seen += 1;
    if (seen > passes) {
      held.push(response);
      return;
    }
    const target = new URL(live.tokenUrl);
    const asked = new URL(request.url, "http://x");
    for (const [k, v] of asked.searchParams) target.searchParams.set(k, v);
    const answer = await fetch(target, { headers: { Authorization: request.headers.authorization ?? "" } });
    response.writeHead(answer.status, { "Content-Type": "application/json" });
    response.end(await answer.text());
  });
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address();
  const close = () => {
    for (const response of held) response.destroy();
    server.close();
  };
  return { url: `http://127.0.0.1:${port}/_apis/token?api-version=2.0`, close };
}
