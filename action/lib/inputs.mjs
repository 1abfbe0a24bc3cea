// The action's inputs, checked before the broker is asked anything.
import { ActionError } from "./runner.mjs";

const SECRET_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// `secrets`: one per line. `prod-db` leases the secret and exports every key under its default name;
// `PGPASSWORD=prod-db/password` exports that key under that name. A secret named only in such lines exports
// only the keys they name. Blank lines and lines starting with `#` are skipped.
export function parseSecrets(text) {
  const order = [];
  const whole = new Set();
  const names = []; // { name, secret, key }
  const problems = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const where = `secrets, line ${index + 1}`;
    const equals = line.indexOf("=");
    let secret;
    if (equals === -1) {
      secret = line;
      whole.add(secret);
    } else {
      const name = line.slice(0, equals).trim();
      const target = line.slice(equals + 1).trim();
      const slash = target.indexOf("/");
      secret = slash === -1 ? target : target.slice(0, slash);
      const key = slash === -1 ? "" : target.slice(slash + 1);
      if (!VARIABLE_NAME.test(name)) problems.push(`${where}: ${JSON.stringify(name)} is not a variable name (A-Z, 0-9, _)`);
      if (key === "") problems.push(`${where}: expected NAME=secret/key`);
      names.push({ name, secret, key });
    }
    if (!SECRET_NAME.test(secret)) problems.push(`${where}: ${JSON.stringify(secret)} is not a secret name`);
    if (!order.includes(secret)) order.push(secret);
  }
  if (order.length === 0 && problems.length === 0) problems.push("secrets: name at least one secret");
  return { order, whole, names, problems };
}

export function parseTtl(text) {
  if (text === "") return undefined;
  return /^\d+$/.test(text) ? Number(text) : text; // whole seconds, or a duration such as "20m"
}

// Everything the main step needs from the runner's INPUT_* variables; every problem at once.
export function readInputs(runner) {
  const url = runner.input("url").replace(/\/+$/, "");
  const audience = runner.input("audience");
  const prefix = runner.input("env-prefix");
  const secrets = parseSecrets(runner.input("secrets"));
  const problems = [...secrets.problems];
  if (!/^https?:\/\//.test(url)) problems.push(`url: the broker's base URL, http:// or https:// (got ${JSON.stringify(url)})`);
  if (audience === "") problems.push("audience: the ID token's audience, one of the broker's issuer audiences");
  if (prefix !== "" && !VARIABLE_NAME.test(prefix)) problems.push(`env-prefix: ${JSON.stringify(prefix)} is not a variable name prefix`);
  if (problems.length > 0) throw new ActionError("the action's inputs are wrong; nothing was leased", problems);
  return { url, audience, prefix, ttl: parseTtl(runner.input("ttl")), secrets };
}
