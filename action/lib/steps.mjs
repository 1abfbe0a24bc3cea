// The action's two steps. main: the job's ID token, a lease for each secret, every value masked as soon as
// it arrives, then the values exported to the job's later steps (GITHUB_ENV) and the lease ids recorded for
// the post step (GITHUB_STATE) and as outputs. post: releases every lease main recorded, also when the job
// failed or was cancelled (`post-if: always()`); one lease failing to release does not stop the others, and
// the broker's scheduler ends any left over at its expires_at. README, "In GitHub Actions".
import { Broker, idToken } from "./broker.mjs";
import { readInputs } from "./inputs.mjs";
import { environmentFor, valueText } from "./naming.mjs";
import { ActionError } from "./runner.mjs";

export async function leaseAndExport(runner, now = () => new Date()) {
  const inputs = readInputs(runner);
  // The post step releases with these, whatever happens from here on.
  runner.saveState("url", inputs.url);
  runner.saveState("audience", inputs.audience);
  const broker = new Broker(inputs.url, now);
  const leases = [];
  for (const secret of inputs.secrets.order) {
    const token = await idToken(runner.env, inputs.audience); // a fresh token: one token obtains one lease
    runner.mask([token]);
    const lease = await broker.requestLease(secret, token, inputs.ttl);
    runner.mask(Object.values(lease.data ?? {}).map(valueText)); // before anything else sees the values
    leases.push(lease);
    runner.saveState("lease_ids", leases.map((l) => l.id).join(" "));
    const bound = lease.bounded_by && lease.bounded_by !== "requested" ? ` (bounded by its ${lease.bounded_by})` : "";
    runner.info(`transom: leased ${secret}: ${lease.id}, until ${lease.expires_at}${bound}`);
  }
  const variables = environmentFor(leases, inputs.secrets, inputs.prefix, runner.env);
  runner.exportVariables(variables);
  const ids = leases.map((l) => l.id).join(" ");
  const earliest = leases.map((l) => l.expires_at).sort((a, b) => Date.parse(a) - Date.parse(b))[0];
  runner.setOutput("lease-ids", ids);
  runner.setOutput("expires-at", earliest);
  runner.info(`transom: exported ${Object.keys(variables).join(", ") || "nothing"}; the post step releases ${ids}`);
}

export async function releaseAll(runner) {
  const ids = runner.state("lease_ids").split(/\s+/).filter(Boolean);
  if (ids.length === 0) {
    runner.info("transom: no lease to release");
    return;
  }
  const broker = new Broker(runner.state("url"));
  const failed = [];
  for (const id of ids) {
    try {
      const token = await idToken(runner.env, runner.state("audience"));
      runner.mask([token]);
      runner.info(`transom: ${id}: ${await broker.releaseLease(id, token)}`);
    } catch (error) {
      runner.warning(failureText(error));
      failed.push(id);
    }
  }
  if (failed.length > 0) {
    throw new ActionError(`${failed.length} of ${ids.length} lease(s) not released: ${failed.join(" ")}`, [
      "each still ends at its expires_at, when the broker revokes it at Vault",
    ]);
  }
}

// What the step's log shows of a failure: an unexpected error's message may quote what it choked on (a
// lease's body), so only its kind is shown.
export function failureText(error) {
  return `transom: ${error instanceof ActionError ? error.text : `unexpected ${error?.name ?? "error"}`}`;
}
