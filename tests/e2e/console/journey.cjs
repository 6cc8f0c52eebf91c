// The console in headless Chromium, driven by playwright-core: an admin signs in, filters the
// catalog, configures cache/memory through the generated form, runs actions in try-it, watches
// the chart, browses the schemas and creates a key; an operator (an OIDC token with the role
// operator) is refused the admin-only key form, even when posting it directly. Prints one JSON
// object of what it saw; tests/e2e/console.rs checks it. Screenshots go to $SCREENSHOTS.
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

async function calls(page) {
  const svg = await page.evaluate(async () => (await fetch("/console/providers/cache/memory/chart.svg")).text());
  return Number(/data-calls="([0-9.]+)"/.exec(svg)[1]);
}

async function run(page, action, fields) {
  await page.goto(`${base}/console/try/cache/memory/${action}`);
  for (const [name, value] of Object.entries(fields)) await page.locator(`#f-${name}`).fill(value);
  await page.getByRole("button", { name: "Run" }).click();
  await page.waitForLoadState();
}

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const admin = await (await browser.newContext()).newPage();
  await admin.goto(base + "/console");
  await admin.screenshot({ path: `${shots}/01-sign-in.png`, fullPage: true });
  await signIn(admin, process.env.ADMIN_KEY);

  // Catalog: every provider, then the script's filter as you type; the keyboard reaches the
  // first provider link from the skip link.
  seen.catalog_rows = await admin.locator("#providers tbody tr").count();
  seen.memory_certification = (await admin
    .locator("#providers tbody tr", { has: admin.getByRole("link", { name: "cache/memory", exact: true }) })
    .locator("td.certification")
    .textContent()).trim();
  await admin.keyboard.press("Tab");
  seen.first_focus = await admin.evaluate(() => document.activeElement.textContent.trim());
  // "cache/" names the cache domain's engines only (ai/gateway's summary speaks of a cache).
  await admin.getByLabel("Search").fill("cache/");
  seen.filtered_rows = await admin.locator("#providers tbody tr:not([hidden])").count();
  await admin.screenshot({ path: `${shots}/02-catalog.png`, fullPage: true });

  // Configure through the form generated from the config schema.
  await admin.goto(base + "/console/providers/cache/memory");
  await admin.locator("#f-default_ttl_ms").fill("60000");
  await admin.getByRole("button", { name: "Save configuration" }).click();
  await admin.waitForLoadState();
  seen.configured = (await admin.locator("p.done").textContent()).trim();
  await admin.screenshot({ path: `${shots}/03-provider.png`, fullPage: true });

  // Try it: set, then get; the chart counts the calls.
  seen.calls_before = await calls(admin);
  await run(admin, "set", { key: "console:1", value: '{"hello": "console"}' });
  seen.set_response = await admin.locator("#response").textContent();
  await run(admin, "get", { key: "console:1" });
  seen.get_response = await admin.locator("#response").textContent();
  seen.curl = await admin.locator("#curl").textContent();
  await admin.screenshot({ path: `${shots}/04-try-it.png`, fullPage: true });
  for (let n = 0; n < 5; n++) await run(admin, "get", { key: "console:1" });
  seen.calls_after = await calls(admin);
  await admin.goto(base + "/console/providers/cache/memory");
  await admin.waitForTimeout(2500); // one refresh of the live chart
  await admin.locator("#chart").screenshot({ path: `${shots}/05-live-chart.png` });

  await admin.goto(base + "/console/schemas");
  seen.schema_sections = await admin.locator("main section").count();
  await admin.screenshot({ path: `${shots}/06-schemas.png`, fullPage: true });

  await admin.goto(base + "/console/tenant");
  await admin.locator("#scopes").fill("read");
  await admin.getByRole("button", { name: "Create key" }).click();
  await admin.waitForLoadState();
  seen.new_key = (await admin.locator("#new-key").textContent()).trim();
  seen.revision = (await admin.locator("#revision").textContent()).trim();
  seen.decision_rows = await admin.locator("#decisions tbody tr").count();
  await admin.screenshot({ path: `${shots}/07-tenant.png`, fullPage: true });
  // A second key, revoked from its row (the first one stays for the API checks).
  await admin.locator("#scopes").fill("invoke:cache");
  await admin.getByRole("button", { name: "Create key" }).click();
  await admin.waitForLoadState();
  const doomed = (await admin.locator("#new-key").textContent()).trim().split("_")[1];
  await admin.getByRole("button", { name: `Revoke key ${doomed}` }).click();
  await admin.waitForLoadState();
  seen.revoked_notice = (await admin.locator("p.done").textContent()).trim();
  seen.revoked_id = doomed;

  // The operator: the page shows the refusal, and posting the form directly is refused by the
  // server all the same.
  const operator = await (await browser.newContext()).newPage();
  await signIn(operator, process.env.OPERATOR_TOKEN);
  await operator.goto(base + "/console/tenant");
  seen.operator_page = (await operator.locator("#main .error").first().textContent()).trim();
  await operator.screenshot({ path: `${shots}/08-operator-tenant.png`, fullPage: true });
  const csrf = await operator.locator("input[name=csrf]").first().inputValue();
  const direct = await operator.request.post(base + "/console/tenant/keys", {
    form: { csrf, scopes: "*" },
    maxRedirects: 0,
  });
  seen.operator_post_status = direct.status();
  seen.operator_post_body = await direct.text();
  const forged = await operator.request.post(base + "/console/tenant/keys", {
    form: { csrf: "not-the-token", scopes: "*" },
    maxRedirects: 0,
  });
  seen.forged_post_status = forged.status();

  // Without JavaScript the pages still read and the forms still work.
  const plain = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
  await signIn(plain, process.env.ADMIN_KEY);
  seen.no_js_catalog_rows = await plain.locator("#providers tbody tr").count();
  await plain.goto(base + "/console/catalog?q=bus");
  seen.no_js_filtered_rows = await plain.locator("#providers tbody tr").count();

  await browser.close();
  console.log(JSON.stringify(seen));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
