// Which variable holds which leased value: the Python client's rules (app/client/naming.py). By default the
// key, uppercased, every character other than A-Z and 0-9 turned into `_`, after `env-prefix`; a
// `NAME=secret/key` line names one value. Two values for one variable, a value no variable can hold and a
// default name the guard refuses all stop the step before anything is exported.
import { refusal } from "./envguard.mjs";
import { ActionError } from "./runner.mjs";

export function defaultName(key, prefix = "") {
  const name = prefix + key.replace(/[^A-Za-z0-9]/g, "_").toUpperCase();
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

// Strings as they are; anything else a KV secret may hold (numbers, lists, objects) as compact JSON.
export function valueText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

// A key as the log may show it: a name from Vault must not forge log lines or workflow commands.
export function shownKey(key) {
  return /^[\x20-\x7e]{1,100}$/.test(key) && !key.startsWith("::") ? key : JSON.stringify(key.slice(0, 100));
}

// NAME -> value for the leases ({secret, data}), by the parsed `secrets` input; throws ActionError.
export function environmentFor(leases, secrets, prefix, environment) {
  const found = new Map();
  const origin = new Map();
  const refused = [];
  const problems = [];
  const add = (name, value, where, explicit) => {
    const text = valueText(value);
    const why = explicit ? null : refusal(name, environment);
    if (why !== null) refused.push(`${where} would be $${name}: ${why}`);
    if (found.has(name)) problems.push(`${origin.get(name)} and ${where} would both be $${name}`);
    if (text.includes("\0")) problems.push(`${where} holds a NUL character, which no environment variable can`);
    found.set(name, text);
    origin.set(name, where);
  };
  for (const lease of leases) {
    const data = lease.data ?? {};
    const explicit = secrets.names.filter((m) => m.secret === lease.secret);
    for (const { name, key } of explicit) {
      if (!Object.hasOwn(data, key)) problems.push(`${name}=${lease.secret}/${shownKey(key)}: the secret has no such key`);
      else add(name, data[key], `${lease.secret}/${shownKey(key)}`, true);
    }
    if (!secrets.whole.has(lease.secret)) continue;
    for (const [key, value] of Object.entries(data)) {
      if (explicit.some((m) => m.key === key)) continue;
      add(defaultName(key, prefix), value, `${lease.secret}/${shownKey(key)}`, false);
    }
  }
  if (refused.length > 0) {
    problems.push(...refused, "a key's name comes from the secret at Vault; to use such a name anyway, name it with a NAME=secret/key line");
  }
  if (problems.length > 0) throw new ActionError("refused to export the leased values; nothing was exported", problems);
  return Object.fromEntries(found);
}
