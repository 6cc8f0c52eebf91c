// The console's task inbox in headless Chromium, driven by playwright-core: a developer signs
// in, opens a task and is refused approving it by the policy (the page shows the API's 403);
// an approver signs in, sees the inbox with each task's status and SLA (one overdue), claims a
// task and approves it with a comment. Prints one JSON object of what it saw;
// tests/e2e/tasks.rs checks it. Screenshots go to $SCREENSHOTS.
"use strict";
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const base = process.env.CONSOLE_BASE;
const shots = process.env.SCREENSHOTS;
const seen = {};

async function signIn(page, credential) {
  await page.goto(base + "/console");
  await page.getByLabel("API key, OIDC access token or operator key").fill(credential);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL("**/console/catalog");
}

async function submit(page, button) {
  await page.getByRole("button", { name: button, exact: true }).click();
  await page.waitForLoadState();
}

async function notice(page) {
  return (await page.locator("main .done, main .error").first().textContent()).trim().replace(/\s+/g, " ");
}

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });

  // A developer may read the inbox, but the policy refuses the decision.
  const dev = await (await browser.newContext()).newPage();
  await signIn(dev, process.env.DEVELOPER_TOKEN);
  await dev.goto(base + "/console/tasks/po-18");
  await submit(dev, "Approve");
  seen.developer_refusal = await notice(dev);
  await dev.screenshot({ path: `${shots}/tasks-refused.png`, fullPage: true });

  // The approver: the inbox, then one task claimed and approved.
  const ann = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await signIn(ann, process.env.APPROVER_TOKEN);
  await ann.getByRole("link", { name: "Tasks", exact: true }).click();
  await ann.waitForURL("**/console/tasks");
  seen.rows = await ann.locator("#tasks tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.task));
  seen.overdue = await ann.locator("#tasks tbody .badge", { hasText: "overdue" }).count();
  await ann.screenshot({ path: `${shots}/tasks-inbox.png`, fullPage: true });
  await ann.getByRole("link", { name: "po-17", exact: true }).click();
  await ann.waitForURL("**/console/tasks/po-17");
  await submit(ann, "Claim");
  seen.claimed = await notice(ann);
  await ann.getByLabel("Comment to approve").fill("matches the contract");
  await submit(ann, "Approve");
  seen.approved = await notice(ann);
  seen.status_after = (await ann.locator("#task .badge").first().textContent()).trim();
  seen.buttons_after = await ann.getByRole("button", { name: "Approve", exact: true }).count();
  await ann.screenshot({ path: `${shots}/tasks-approved.png`, fullPage: true });

  await browser.close();
  process.stdout.write(JSON.stringify(seen));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
