// Screenshot the Prefect UI for the README: the Deployments page (the four scheduled
// refresh-domain deployments) and a completed refresh-domain flow run (task runs and artifacts),
// stacked into one PNG.
//
// Needs a running Prefect server with the deployments registered and at least one completed
// refresh-domain run (see README.md next to this file). Nothing is started or stopped here.
//
//   node prefect_ui.mjs [--url http://127.0.0.1:4200] [--run <flow-run-id>] [--out ../../docs/img]
//
// Writes <out>/prefect-ui.png (both pages stacked) and, with --keep-parts, also
// <out>/prefect-deployments.png and <out>/prefect-run.png.

import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const base = opt('url', process.env.PREFECT_UI_URL || 'http://127.0.0.1:4200').replace(/\/$/, '');
const outDir = resolve(opt('out', join(here, '..', '..', 'docs', 'img')));
const keepParts = args.includes('--keep-parts');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const viewport = { width: 1400, height: 900 };
const runHeight = Number(opt('run-height', '1250'));

async function api(path, body) {
  const res = await fetch(`${base}/api${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

// The newest completed refresh-domain run, unless --run names one.
async function pickRun() {
  const given = opt('run');
  if (given) return given;
  const runs = await api('/flow_runs/filter', {
    flow_runs: { state: { type: { any_: ['COMPLETED'] } } },
    flows: { name: { any_: ['refresh-domain'] } },
    sort: 'END_TIME_DESC',
    limit: 1,
  });
  if (!runs.length) throw new Error('no completed refresh-domain flow run on the server yet');
  return runs[0].id;
}

async function settle(page, ms = 1500) {
  await page.waitForLoadState('networkidle', { timeout: 30000 }).catch(() => {});
  await page.waitForTimeout(ms);
}

const profile = mkdtempSync(join(tmpdir(), 'kgrec-shot-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  viewport,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  mkdirSync(outDir, { recursive: true });
  const runId = await pickRun();
  const page = context.pages()[0] || (await context.newPage());

  // (a) Deployments: name, flow, schedule, status.
  await page.goto(`${base}/deployments`);
  await page.getByText('refresh-social').first().waitFor({ timeout: 60000 });
  await settle(page);
  // The table is short: keep the top of the page only (the rest is empty background).
  const deployments = await page.screenshot({
    clip: { x: 0, y: 0, width: viewport.width, height: Number(opt('deployments-height', '520')) },
  });

  // (b) The completed run: header, task runs and artifacts. Prefect 3's run page shows the
  // timeline on top and tabs (Logs, Task Runs, Artifacts, ...) below; open Artifacts.
  await page.goto(`${base}/runs/flow-run/${runId}`);
  await page.getByText('Completed').first().waitFor({ timeout: 60000 });
  await settle(page);
  // A taller viewport so the artifact cards fit under the timeline.
  await page.setViewportSize({ width: viewport.width, height: runHeight });
  const tab = page.getByRole('tab', { name: /^Artifacts/ })
    .or(page.getByText('Artifacts', { exact: true }));
  await tab.first().click();
  await settle(page);
  const run = await page.screenshot();
  await page.setViewportSize(viewport);

  if (keepParts) {
    writeFileSync(join(outDir, 'prefect-deployments.png'), deployments);
    writeFileSync(join(outDir, 'prefect-run.png'), run);
  }

  // Stack both into one PNG by laying them out in a page and screenshotting it (no image tools needed).
  const uri = (buf) => `data:image/png;base64,${buf.toString('base64')}`;
  const sheet = await context.newPage();
  await sheet.setViewportSize({ width: viewport.width + 32, height: 600 });
  await sheet.setContent(`<!doctype html><html><body style="margin:0;padding:16px;background:#e5e7eb;
      font:600 15px system-ui,sans-serif;color:#111">
    <div style="margin:0 0 6px 2px">Deployments: one scheduled refresh-domain deployment per domain</div>
    <img src="${uri(deployments)}" style="display:block;width:${viewport.width}px;border:1px solid #9ca3af">
    <div style="margin:14px 0 6px 2px">A completed refresh-domain run and its artifacts</div>
    <img src="${uri(run)}" style="display:block;width:${viewport.width}px;border:1px solid #9ca3af">
  </body></html>`);
  await sheet.waitForTimeout(300);
  const target = join(outDir, 'prefect-ui.png');
  await sheet.screenshot({ path: target, fullPage: true });
  console.log(`wrote ${target} (run ${runId})`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
