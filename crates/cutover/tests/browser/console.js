// Browser scenarios of the console, run by crates/cutover/tests/console_e2e.rs
// and bench/console.sh with NODE_PATH set to the node_modules that
// scripts/setup-browser.sh installs. Each scenario launches Debian's chromium
// headless with a fresh profile, fails (exit 1) on any console error, and
// prints one JSON line of results on success.
//
//   node console.js pages    BASE PATH...          every page loads cleanly, named controls, phone width
//   node console.js watch    BASE OUTDIR DEPLOYMENT_ID   the page advances live to the end
//   node console.js rollback BASE OUTDIR DEPLOYMENT_ID   overview screenshot, then
//                                                 "Stop and roll back" mid-canary
//   node console.js approve  BASE PIPELINE         "Approve" with a comment
//   node console.js hosts    BASE HOST_DEPLOYMENT_ID RELEASE   the agent is listed; the
//                                                 host deployment's page shows the host in
//                                                 progress, then (RELEASE written, which its
//                                                 script waits for) advances live to the end
//   node console.js usable   BASE                  time until the overview is usable (bench)
//   node console.js chart    BASE DEPLOYMENT_ID    traffic changes seen by the chart (bench)
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const os = require("os");
const path = require("path");

const [scenario, base, ...rest] = process.argv.slice(2);
const deadline = (ms) => Date.now() + ms;

async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CUTOVER_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--no-first-run",
    ],
    viewport: { width: 1280, height: 800 },
  });
  const errors = [];
  context.on("page", (p) => watchErrors(p, errors));
  const page = context.pages()[0] || (await context.newPage());
  watchErrors(page, errors);
  return { context, page, errors, profile };
}

function watchErrors(page, errors) {
  if (page.__watched) return;
  page.__watched = true;
  page.on("console", (m) => { if (m.type() === "error") errors.push(`${page.url()}: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e.message}`));
}

async function finish(b, result) {
  await b.context.close();
  fs.rmSync(b.profile, { recursive: true, force: true });
  if (b.errors.length) {
    console.error("console errors:\n" + b.errors.join("\n"));
    process.exit(1);
  }
  console.log(JSON.stringify(result));
}

async function pages() {
  const paths = rest;
  const b = await launch();
  const loaded = [];
  for (const p of paths) {
    const resp = await b.page.goto(base + p, { waitUntil: "load" });
    if (!resp || resp.status() !== 200) throw new Error(`${p}: HTTP ${resp && resp.status()}`);
    // Every button and link has an accessible name.
    const unnamed = await b.page.evaluate(() =>
      [...document.querySelectorAll("button, a, input:not([type=hidden]), textarea")]
        .filter((e) => !(e.innerText || e.getAttribute("aria-label") || (e.labels && e.labels.length)))
        .map((e) => e.outerHTML));
    if (unnamed.length) throw new Error(`${p}: controls without a name: ${unnamed.join(" ")}`);
    // Nothing wider than a phone's screen at phone width.
    await b.page.setViewportSize({ width: 390, height: 844 });
    const overflow = await b.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await b.page.setViewportSize({ width: 1280, height: 800 });
    if (overflow > 1) throw new Error(`${p}: ${overflow}px wider than a phone`);
    loaded.push(p);
  }
  await finish(b, { loaded });
}

async function watch() {
  const [outdir, id] = rest;
  const b = await launch();
  await b.page.goto(`${base}/deployments/${id}`);
  await b.page.evaluate(() => { window.__sameDocument = true; });
  const seen = new Set();
  let shot = 0, canaryAt = 0;
  const end = deadline(120000);
  for (;;) {
    const state = await b.page.evaluate(() => ({
      same: window.__sameDocument === true,
      status: document.querySelector("#state + p .badge")?.textContent,
      percent: document.querySelector("figure.chart")?.getAttribute("data-percent"),
    }));
    if (!state.same) throw new Error("the page reloaded");
    seen.add(`${state.status}@${state.percent}`);
    const canary = Number(state.percent) > 0 && Number(state.percent) < 100;
    if (canary && !canaryAt) canaryAt = Date.now();
    // At the first sight of the canary, and again a few seconds into it
    // (when the chart shows the step) if it still runs.
    const later = canary && shot === 1 && Date.now() - canaryAt > 3000;
    if ((canary && !shot) || later) {
      await b.page.screenshot({ path: path.join(outdir, "console-deployment.png"), fullPage: true });
      shot += 1;
    }
    if (state.status === "Succeeded") break;
    if (Date.now() > end) throw new Error(`never succeeded; seen ${[...seen]}`);
    await b.page.waitForTimeout(100);
  }
  if (!shot) throw new Error(`never saw the canary in progress; seen ${[...seen]}`);
  const metrics = await b.page.locator("#metrics").count();
  if (!metrics) throw new Error("no target group metrics section");
  await finish(b, { seen: [...seen] });
}

async function rollback() {
  const [outdir, id] = rest;
  const b = await launch();
  // The overview while the canary runs: its traffic bar.
  await b.page.goto(base + "/");
  await b.page.locator(`a[href="/deployments/${id}"]`).waitFor({ timeout: 30000 });
  await b.page.screenshot({ path: path.join(outdir, "console-overview.png"), fullPage: true });
  await b.page.goto(`${base}/deployments/${id}`);
  await b.page.waitForFunction(() => Number(document.querySelector("figure.chart")?.getAttribute("data-percent")) > 0,
    null, { timeout: 60000, polling: 100 });
  await Promise.all([
    b.page.waitForURL(`${base}/deployments/${id}`, { waitUntil: "load" }),
    b.page.getByRole("button", { name: "Stop and roll back", exact: true }).click(),
  ]);
  await finish(b, { clicked: "Stop and roll back" });
}

async function approve() {
  const [pipeline] = rest;
  const b = await launch();
  await b.page.goto(`${base}/pipelines/${pipeline}`);
  await b.page.getByRole("button", { name: "Approve", exact: true }).waitFor({ timeout: 60000 });
  await b.page.getByLabel("Comment").fill("looks good from the console");
  await Promise.all([
    b.page.waitForURL(`${base}/pipelines/${pipeline}`, { waitUntil: "load" }),
    b.page.getByRole("button", { name: "Approve", exact: true }).click(),
  ]);
  await finish(b, { clicked: "Approve" });
}

async function hosts() {
  const [id, release] = rest;
  const b = await launch();
  await b.page.goto(`${base}/hosts`);
  await b.page.locator("tbody th", { hasText: "h1" }).waitFor({ timeout: 10000 });
  await b.page.goto(`${base}/host-deployments/${id}`);
  await b.page.evaluate(() => { window.__sameDocument = true; });
  const seen = [];
  const end = deadline(60000);
  for (;;) {
    const state = await b.page.evaluate(() => ({
      same: window.__sameDocument === true,
      status: document.querySelector("#state + p .badge")?.textContent,
      hosts: [...document.querySelectorAll("#hosts ~ .metrics h3 .badge")].map((e) => e.textContent).join(","),
    }));
    if (!state.same) throw new Error("the page reloaded");
    const s = `${state.status}@${state.hosts}`;
    if (seen[seen.length - 1] !== s) seen.push(s);
    // The host's script runs until this file exists.
    if (state.status === "InProgress" && state.hosts === "InProgress" && !fs.existsSync(release)) {
      fs.writeFileSync(release, "go\n");
    }
    if (state.status === "Succeeded") break;
    if (Date.now() > end) throw new Error(`never succeeded; seen ${seen}`);
    await b.page.waitForTimeout(100);
  }
  // The script's output, behind its summary.
  const summary = b.page.getByText("Output of ApplicationStart on h1");
  await summary.click();
  const output = await b.page.locator("details[open] pre.output").first().textContent();
  await finish(b, { seen, output });
}

async function usable() {
  const b = await launch();
  const t0 = Date.now();
  await b.page.goto(base + "/", { waitUntil: "load" });
  await b.page.locator("tbody tr").first().waitFor();
  const ms = Date.now() - t0;
  const rows = await b.page.locator("tbody tr").count();
  await finish(b, { usable_ms: ms, rows });
}

// Reports, for each traffic change the API shows, how long until the chart shows it.
async function chart() {
  const [id] = rest;
  const b = await launch();
  await b.page.goto(`${base}/deployments/${id}`);
  const delays = [];
  let last = await b.page.evaluate(() => document.querySelector("figure.chart").getAttribute("data-percent"));
  const end = deadline(120000);
  while (Date.now() < end) {
    const r = await fetch(`${base}/v1/deployments/${id}`).then((x) => x.json());
    // As the page reads it: a succeeded deployment's replacement serves 100%.
    const p = String(r.deployment.status === "Succeeded" ? 100 : r.deployment.prodGreenPercent);
    if (p !== last) {
      const seenAt = Date.now();
      await b.page.waitForFunction((want) => document.querySelector("figure.chart").getAttribute("data-percent") === want,
        p, { polling: 5, timeout: 10000 });
      delays.push({ percent: Number(p), ms: Date.now() - seenAt });
      last = p;
    }
    if (r.deployment.finishedAt) break;
    await new Promise((res) => setTimeout(res, 5));
  }
  await finish(b, { delays });
}

const scenarios = { pages, watch, rollback, approve, hosts, usable, chart };
if (!scenarios[scenario]) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
scenarios[scenario]().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
