// Talking to the GitHub Actions runner: workflow commands on stdout, file commands in GITHUB_ENV,
// GITHUB_OUTPUT and GITHUB_STATE. Only Node's standard library: the runner's own Node runs this action as it
// is, with nothing installed.
import { appendFileSync } from "node:fs";
import { randomBytes } from "node:crypto";

// The runner's escaping of a workflow command's data (what @actions/core does), so that `::add-mask::`
// masks exactly the text that will appear, and a value cannot end the command early.
export function escapeData(text) {
  return String(text).replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

// One `::add-mask::` command per non-blank line of each value: the runner masks line by line, so a
// multi-line value (a PEM key) masked whole would still show its lines.
export function maskCommands(values, seen = new Set()) {
  const commands = [];
  for (const value of values) {
    for (const line of String(value).split(/\r?\n|\r/)) {
      if (line.trim() !== "" && !seen.has(line)) {
        seen.add(line);
        commands.push(`::add-mask::${escapeData(line)}`);
      }
    }
  }
  return commands;
}

// GitHub's multiline-safe `NAME<<DELIMITER` form, with a random delimiter that does not occur in the value.
export function heredoc(name, value) {
  let delimiter;
  do {
    delimiter = `ghadelimiter_${randomBytes(16).toString("hex")}`;
  } while (value.includes(delimiter));
  return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
}

export class Runner {
  constructor(env = process.env, write = (line) => process.stdout.write(`${line}\n`)) {
    this.env = env;
    this.write = write;
    this.masked = new Set();
  }

  input(name) {
    return (this.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] ?? "").trim();
  }

  state(name) {
    return this.env[`STATE_${name}`] ?? "";
  }

  mask(values) {
    for (const command of maskCommands(values, this.masked)) this.write(command);
  }

  info(message) {
    this.write(message);
  }

  warning(message) {
    this.write(`::warning::${escapeData(message)}`);
  }

  // The step fails with this message (as @actions/core's setFailed: an error annotation, exit code 1).
  fail(message) {
    this.write(`::error::${escapeData(message)}`);
    process.exitCode = 1;
  }

  exportVariables(variables) {
    this.#append("GITHUB_ENV", Object.entries(variables).map(([name, value]) => heredoc(name, value)).join(""));
  }

  setOutput(name, value) {
    this.#append("GITHUB_OUTPUT", heredoc(name, value));
  }

  saveState(name, value) {
    this.#append("GITHUB_STATE", heredoc(name, value));
  }

  #append(variable, text) {
    const path = this.env[variable];
    if (!path) throw new ActionError(`$${variable} is not set: is this running in a GitHub Actions step?`);
    appendFileSync(path, text, { encoding: "utf8" });
  }
}

// A failure the step reports as it is (no stack trace): bad inputs, a denial, an unreachable broker.
export class ActionError extends Error {
  constructor(message, lines = []) {
    super(message);
    this.lines = lines;
  }

  get text() {
    return [this.message, ...this.lines.map((line) => `  ${line}`)].join("\n");
  }
}
