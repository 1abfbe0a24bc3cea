// The action's post step (action.yml): release every lease the main step recorded. Logic in lib/steps.mjs.
import { failureText, releaseAll } from "./lib/steps.mjs";
import { Runner } from "./lib/runner.mjs";

const runner = new Runner();
try {
  await releaseAll(runner);
} catch (error) {
  runner.fail(failureText(error));
}
