// The operator's and the auditor's console pages in headless Chromium, driven by
// playwright-core: an operator signs in with an operator key, creates tenants, suspends,
// resumes and deletes them from the list, sets a tenant's limits and policy data and issues
// its first key; that key's holder (the tenant's admin) is shown no operator page, configures
// cache/memory twice, rolls back to version 1 from the history, writes and rotates a secret,
// reads the audit log with its chain's verdict and the decisions, and exports both; the
// operator then sees the tenant's usage. Prints one JSON object of what it saw;
// tests/e2e/console_admin.rs checks it. Screenshots go to $SCREENSHOTS.
"use strict";
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const base = process.env.CONSOLE_BASE;
const shots = process.env.SCREENSHOTS;
const [firstSecret, secondSecret] = [process.env.FIRST_SECRET, process.env.SECOND_SECRET];
const seen = {};
// Every page the tenant's admin was shown after writing a secret, and every URL it went to.
const shown = [];

async function signIn(page, credential, home) {
  await page.goto(base + "/console");
  await page.getByLabel("API key, OIDC access token or operator key").fill(credential);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL("**" + home);
}

async function submit(page, button) {
  await page.getByRole("button", { name: button, exact: true }).click();
  await page.waitForLoadState();
}

async function notice(page) {
  return (await page.locator("main .done, main .error").first().textContent()).trim();
}

async function status(page, tenant) {
  return (await page.locator(`#tenants tr[data-tenant="${tenant}"] .badge`).textContent()).trim();
}

async function nav(page) {
  return (await page.locator("header nav a").allTextContents()).map((t) => t.trim());
}

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });

  // The operator: the tenants' plane and nothing else.
  const op = await (await browser.newContext()).newPage();
  await signIn(op, process.env.OPERATOR_KEY, "/console/admin/tenants");
  seen.operator_nav = await nav(op);
  for (const id of ["umbra", "paused", "doomed"]) {
    await op.getByLabel("Tenant id").fill(id);
    await submit(op, "Create tenant");
  }
  seen.created = await notice(op);
  await submit(op, "Suspend umbra");
  seen.suspended = await status(op, "umbra");
  seen.suspended_notice = await notice(op);
  await submit(op, "Resume umbra");
  seen.resumed = await status(op, "umbra");
  await submit(op, "Suspend paused");
  await submit(op, "Delete doomed");
  seen.deleted = await status(op, "doomed");
  seen.deleted_notice = await notice(op);
  // Reloading the list after a form sends nothing again: the outcome was shown once.
  await op.reload();
  seen.notice_after_reload = await op.locator("main .done").count();
  await op.screenshot({ path: `${shots}/admin-tenants.png`, fullPage: true });

  await op.getByRole("link", { name: "umbra", exact: true }).click();
  await op.waitForLoadState();
  await op.locator("#rate_requests").fill("1000");
  await op.locator("#rate_per_seconds").fill("1");
  await op.locator("#rate_burst").fill("200");
  await op.locator("#decision_retention_days").fill("30");
  await op.locator("#max_api_keys").fill("10");
  await submit(op, "Save limits");
  seen.limits_notice = await notice(op);
  // Half a request budget is refused by the console before the API.
  await op.locator("#rate_burst").fill("");
  await submit(op, "Save limits");
  seen.half_budget = await notice(op);
  await op.locator("#policy-json").fill(JSON.stringify({
    roles: { support: [{ operation: "read", domain: "cache", provider: "*", action: "*" }] },
    deny_actions: ["payments/*/refund", "cache/memory/delete"],
  }, null, 2));
  await submit(op, "Save policy");
  seen.policy_notice = await notice(op);
  // A typo in the policy is the API's refusal, pointing at the field.
  await op.locator("#policy-json").fill('{"deny_actions": ["nonsense"]}');
  await submit(op, "Save policy");
  seen.bad_policy = await notice(op);
  await op.locator("#key-scopes").fill("*");
  await submit(op, "Issue key");
  const adminKey = (await op.locator("#new-key").textContent()).trim();
  seen.issued_key_prefix = adminKey.split("_")[0];
  await op.reload();
  seen.key_after_reload = await op.locator("#new-key").count();

  // The tenant's admin, with the key the operator issued.
  const admin = await (await browser.newContext()).newPage();
  await signIn(admin, adminKey, "/console/catalog");
  seen.admin_nav = await nav(admin);
  const refused = await admin.goto(base + "/console/admin/tenants");
  seen.admin_at_operator_page = refused.status();
  seen.admin_operator_message = (await admin.locator("main").textContent()).replace(/\s+/g, " ").trim();
  await admin.screenshot({ path: `${shots}/admin-refused.png`, fullPage: true });

  for (const ttl of ["60000", "5000"]) {
    await admin.goto(base + "/console/providers/cache/memory");
    await admin.locator("#f-default_ttl_ms").fill(ttl);
    await admin.getByRole("button", { name: "Save configuration" }).click();
    await admin.waitForLoadState();
  }
  await admin.getByRole("link", { name: "History and rollback" }).click();
  await admin.waitForLoadState();
  await submit(admin, "Roll back to version 1");
  seen.rollback_notice = await notice(admin);
  seen.history_url = admin.url();
  seen.history = await admin.locator("#history tbody tr").evaluateAll((rows) => rows.map((row) => ({
    version: Number(row.dataset.version),
    actor: row.children[2].textContent.trim(),
    note: row.children[3].textContent.trim(),
    changes: row.children[4].textContent.replace(/\s+/g, " ").trim(),
    current: row.querySelector(".badge") !== null,
    rollback: row.querySelector("button") !== null,
  })));
  await admin.screenshot({ path: `${shots}/config-history.png`, fullPage: true });

  // The operator's deny_actions hold for the tenant's admin.
  await admin.goto(base + "/console/try/cache/memory/delete");
  await admin.locator("#f-key").fill("console:1");
  await submit(admin, "Run");
  seen.denied_by_tenant_policy = (await admin.locator("#main .error").first().textContent()).replace(/\s+/g, " ").trim();

  // Secrets: written, then rotated from the row's link; the value is in no page or URL.
  await admin.goto(base + "/console/secrets");
  await admin.getByLabel("Name").fill("pg-password");
  await admin.getByLabel("Value").fill(firstSecret);
  await submit(admin, "Write secret");
  seen.secret_written = await notice(admin);
  shown.push(admin.url(), await admin.content());
  await admin.getByRole("link", { name: "Rotate pg-password" }).click();
  await admin.waitForLoadState();
  seen.rotate_name = await admin.getByLabel("Name").inputValue();
  seen.rotate_value = await admin.getByLabel("Value").inputValue();
  await admin.getByLabel("Value").fill(secondSecret);
  await submit(admin, "Write secret");
  seen.secret_rotated = await notice(admin);
  seen.secret_rows = await admin.locator("#secrets tbody tr").evaluateAll((rows) =>
    rows.map((row) => Array.from(row.children).map((c) => c.textContent.trim())));
  shown.push(admin.url(), await admin.content());
  await admin.screenshot({ path: `${shots}/secrets.png`, fullPage: true });

  await admin.goto(base + "/console/audit");
  seen.chain = (await admin.locator("#chain").textContent()).replace(/\s+/g, " ").trim();
  seen.audit_rows = await admin.locator("#audit tbody tr").count();
  seen.audit_operations = await admin.locator("#audit tbody tr td:nth-child(5)").allTextContents();
  shown.push(await admin.content());
  await admin.screenshot({ path: `${shots}/audit-log.png`, fullPage: true });
  await admin.getByLabel("Entity starts with").fill("provider/");
  await submit(admin, "Filter");
  seen.filtered_audit_rows = await admin.locator("#audit tbody tr").count();
  const auditExport = await admin.request.get(base + "/console/audit/export?format=jsonl");
  seen.audit_export_type = auditExport.headers()["content-type"];
  seen.audit_export_disposition = auditExport.headers()["content-disposition"];
  seen.audit_export = await auditExport.text();
  shown.push(seen.audit_export);

  await admin.goto(base + "/console/decisions");
  seen.decision_rows = await admin.locator("#decisions tbody tr").count();
  await admin.getByLabel("Result").selectOption("deny");
  await submit(admin, "Filter");
  seen.denied_rows = await admin.locator("#decisions tbody tr").count();
  await admin.goto(base + "/console/decisions");
  await admin.screenshot({ path: `${shots}/decisions.png`, fullPage: true });
  const csv = await admin.request.get(base + "/console/decisions/export?format=csv");
  seen.decisions_csv_status = csv.status();
  seen.decisions_csv = await csv.text();
  shown.push(seen.decisions_csv);

  // The operator sees the tenant's calls, once the gateways have flushed their counts.
  await op.waitForTimeout(2500);
  await op.goto(base + "/console/admin/tenants/umbra?days=7");
  seen.usage_calls = Number(await op.locator("#usage-chart svg").getAttribute("data-calls"));
  seen.usage_days = await op.locator("#usage-chart svg").getAttribute("aria-label");
  seen.limits_shown = await op.locator("#rate_requests").inputValue();
  seen.stored_rows = await op.locator("#stored tbody tr").count();
  await op.screenshot({ path: `${shots}/admin-tenant.png`, fullPage: true });
  const exported = await op.request.get(base + "/console/admin/tenants/umbra/export");
  seen.tenant_export = await exported.json();

  seen.secret_in_pages = shown.some((text) => text.includes(firstSecret) || text.includes(secondSecret));
  await browser.close();
  console.log(JSON.stringify(seen));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
