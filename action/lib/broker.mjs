// The job's ID token from the runner, and the broker's lease routes (docs/API.md, "Leases") over fetch.
// Messages name secrets, lease ids and reason codes, never a value or a token; an answer's body is never
// quoted, since a lease's body holds the values.
import { ActionError } from "./runner.mjs";

const TOKEN_TIMEOUT_MS = 20_000;
const BROKER_TIMEOUT_MS = 60_000; // a grant waits on Vault, which the broker gives a few seconds
const USER_AGENT = "transom-action/1";

async function fetchJson(url, options, what, timeoutMs) {
  let response;
  try {
    response = await fetch(url, { ...options, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new ActionError(`${what}: no answer from ${new URL(url).origin} (${error.cause?.code ?? error.name})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null; // not JSON: an HTML error page of a proxy, say
  }
  return { status: response.status, body, retryAfter: response.headers.get("retry-after") };
}

// GitHub's ID token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL), asked for the broker's audience.
export async function idToken(env, audience) {
  const requestUrl = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const bearer = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!requestUrl || !bearer) {
    throw new ActionError("no OIDC ID token for this job: ACTIONS_ID_TOKEN_REQUEST_URL is not set", [
      "give the job (or the workflow) `permissions: id-token: write`",
    ]);
  }
  const url = new URL(requestUrl);
  url.searchParams.set("audience", audience);
  const headers = { Authorization: `Bearer ${bearer}`, Accept: "application/json" };
  const { status, body } = await fetchJson(url, { headers }, "the job's ID token", TOKEN_TIMEOUT_MS);
  if (status >= 400 && status < 500) {
    throw new ActionError(`GitHub Actions refused to issue an ID token (HTTP ${status})`, [
      "does the job have `permissions: id-token: write`?",
    ]);
  }
  if (status !== 200 || typeof body?.value !== "string" || body.value.trim() === "") {
    throw new ActionError(`GitHub Actions did not issue an ID token (HTTP ${status})`);
  }
  return body.value.trim();
}

const NEXT_OPENING = /next opening is at (\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d))/;

// The earliest next window opening the reasons name (`outside_window`, `freeze_active`), or null.
export function nextOpening(reasons) {
  const found = reasons
    .map((reason) => NEXT_OPENING.exec(reason.message ?? "")?.[1])
    .filter(Boolean)
    .map((text) => new Date(text))
    .filter((date) => !Number.isNaN(date.getTime()));
  return found.length > 0 ? new Date(Math.min(...found)) : null;
}

export function humaneDelay(seconds) {
  let rest = Math.max(0, Math.floor(seconds));
  const days = Math.floor(rest / 86400);
  rest -= days * 86400;
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const parts = [days && `${days}d`, hours && `${hours}h`, minutes && `${minutes}m`].filter(Boolean);
  return parts.length > 0 ? parts.join(" ") : `${rest - minutes * 60}s`;
}

// Every reason of a refusal, and when the next window opens: what the person reading the job log needs.
export function refusalLines(problem, now = new Date()) {
  const reasons = Array.isArray(problem?.reasons) ? problem.reasons.filter((r) => r && typeof r === "object") : [];
  const lines = reasons.map((r) => `- ${r.code}${typeof r.policy === "string" ? ` [policy ${r.policy}]` : ""}: ${r.message}`);
  const opening = nextOpening(reasons);
  if (opening !== null) {
    const shown = opening.toISOString().replace(/\.\d+Z$/, "Z");
    lines.push(`next window opening: ${shown} (in ${humaneDelay((opening - now) / 1000)})`);
  }
  return lines;
}

// A 400/422's `errors` ({"ttl": ["..."]}, nested for nested fields) as `ttl: ...` lines.
export function fieldErrors(errors, prefix = "") {
  if (Array.isArray(errors)) return [`${prefix}: ${errors.join("; ")}`];
  if (errors && typeof errors === "object") {
    return Object.entries(errors).flatMap(([key, value]) => fieldErrors(value, prefix ? `${prefix}.${key}` : key));
  }
  return errors ? [`${prefix}: ${errors}`] : [];
}

export class Broker {
  constructor(baseUrl, now = () => new Date()) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.now = now;
  }

  async requestLease(secret, token, ttl) {
    const body = ttl === undefined ? { secret } : { secret, ttl };
    const lease = await this.#call("POST", "/v1/leases", token, body, `the lease of "${secret}"`, [201, 200]);
    if (typeof lease?.id !== "string") throw new ActionError(`the lease of "${secret}": the broker answered without a lease`);
    return lease;
  }

  // "released", "revoking" (Vault did not confirm yet; the broker's scheduler retries) or "already ended".
  async releaseLease(id, token) {
    const what = `releasing ${id}`;
    const path = `/v1/leases/${encodeURIComponent(id)}/release`;
    const { status } = await this.#send("POST", path, token, undefined, what, [200, 202, 409]);
    return { 200: "released", 202: "revoking", 409: "already ended" }[status];
  }

  async #call(method, path, token, body, what, ok) {
    return (await this.#send(method, path, token, body, what, ok)).body;
  }

  async #send(method, path, token, body, what, ok) {
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json", "User-Agent": USER_AGENT };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const options = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    const answer = await fetchJson(this.baseUrl + path, options, what, BROKER_TIMEOUT_MS);
    if (ok.includes(answer.status)) return answer;
    const problem = answer.body && typeof answer.body === "object" ? answer.body : {};
    const detail = String(problem.detail ?? problem.title ?? "");
    const headline = `${what}${answer.status === 401 || answer.status === 403 ? " was denied" : " failed"}: ${detail} (HTTP ${answer.status})`;
    const lines = [...refusalLines(problem, this.now()), ...fieldErrors(problem.errors)];
    if (answer.retryAfter) lines.push(`retry after ${answer.retryAfter} s`);
    throw new ActionError(headline, lines);
  }
}
