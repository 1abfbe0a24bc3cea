// The action's main step (action.yml): lease, mask, export. Logic in lib/steps.mjs.
import { failureText, leaseAndExport } from "./lib/steps.mjs";
import { Runner } from "./lib/runner.mjs";

const runner = new Runner();
try {
  await leaseAndExport(runner);
} catch (error) {
  runner.fail(failureText(error));
}
