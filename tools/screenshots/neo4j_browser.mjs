// Screenshot Neo4j Browser for the README: connect to the project's Neo4j server, set the query
// parameters, load kg/browser/style.grass and run one of the ready-made queries from
// kg/browser/queries.cypher so that the graph view shows a real subgraph.
//
// Needs `kgrec neo4j start` and a domain refreshed into it (see README.md next to this file).
// The password is read from .neo4j/password at run time; it is typed into Browser's masked
// password field only and is never printed.
//
//   node neo4j_browser.mjs [--query 3] [--domain social] [--user u0016] [--item t0288]
//                          [--browser http://127.0.0.1:7474/browser/] [--bolt bolt://127.0.0.1:7687]
//                          [--style kg/browser/style.grass] [--no-style] [--out ../../docs/img/neo4j-browser.png]

import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const browserUrl = opt('browser', 'http://127.0.0.1:7474/browser/');
const bolt = opt('bolt', 'bolt://127.0.0.1:7687');
const user = opt('user-name', 'neo4j');
const queryNo = Number(opt('query', '3'));
const params = {
  domain: opt('domain', 'social'),
  user_id: opt('user', 'u0016'),
  item_id: opt('item', 't0288'),
};
const target = resolve(opt('out', join(root, 'docs', 'img', 'neo4j-browser.png')));
const passwordFile = resolve(opt('password-file', join(root, '.neo4j', 'password')));
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// The numbered queries of queries.cypher ("// 3. Why an item was recommended ..." up to the next
// blank line after the statement's closing semicolon).
function readQuery(n) {
  const text = readFileSync(join(root, 'kg', 'browser', 'queries.cypher'), 'utf8');
  const blocks = text.split(/\n(?=\/\/ \d+\. )/);
  const block = blocks.find((b) => b.startsWith(`// ${n}. `));
  if (!block) throw new Error(`no query ${n} in kg/browser/queries.cypher`);
  return block
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('//'))
    .join('\n')
    .trim()
    .replace(/;\s*$/, '');
}

const styleText = readFileSync(resolve(opt('style', join(root, 'kg', 'browser', 'style.grass'))), 'utf8');
const query = readQuery(queryNo);
const password = readFileSync(passwordFile, 'utf8').trim();

const profile = mkdtempSync(join(tmpdir(), 'kgrec-shot-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});

await context.grantPermissions(['clipboard-read', 'clipboard-write'], {
  origin: new URL(browserUrl).origin,
});
const page = context.pages()[0] || (await context.newPage());

// Put a command into the top editor and run it (SHOT_STEPS=1 saves a screenshot after each to the temp folder).
async function run(command, settleMs = 800) {
  const editor = page.locator('#monaco-main-editor, [data-testid="activeEditor"]').first();
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  // Paste rather than type: typing lets the editor auto-close brackets, which breaks :style.
  await page.evaluate((text) => navigator.clipboard.writeText(text), command);
  await page.keyboard.press('Control+V');
  await page.getByTestId('editor-Run').first().click();
  await page.waitForTimeout(settleMs);
  if (process.env.SHOT_STEPS) {
    await page.screenshot({ path: join(tmpdir(), `neo4j-step-${++step}.png`) });
  }
}
let step = 0;

try {
  await page.goto(browserUrl);
  const boltInput = page.getByTestId('boltaddress');
  await boltInput.waitFor({ timeout: 60000 });

  // Connect form: scheme select + host:port, user, masked password.
  const [scheme, hostPort] = bolt.split('://');
  const select = page.locator('select').filter({ has: page.locator(`option[value="${scheme}://"]`) });
  if (await select.count()) await select.first().selectOption(`${scheme}://`);
  await boltInput.fill(hostPort);
  await page.getByTestId('username').fill(user);
  await page.getByTestId('password').fill(password);
  await page.getByTestId('connect').click();
  await page.getByText(/You are connected as user/).first().waitFor({ timeout: 30000 });

  // Parameters, style, then a clean stream with just the query's result.
  for (const [k, v] of Object.entries(params)) await run(`:param ${k} => '${v}'`);
  if (!args.includes('--no-style')) await run(`:style ${styleText}`, 1500);
  await run(':clear', 500);
  await run(query, 1000);

  // Wait for the graph view: nodes drawn in the result frame's SVG, then let the layout settle.
  const drawn = page.locator('svg g.node').first();
  const crashed = page.getByText('Something went wrong');
  const empty = page.getByText('(no changes, no records)');
  await drawn.or(crashed).or(empty).first().waitFor({ timeout: 60000 });
  if (await crashed.count()) throw new Error('Neo4j Browser crashed while drawing the result');
  if (!(await drawn.count())) {
    throw new Error(`query ${queryNo} returned nothing for ${JSON.stringify(params)}: is the domain loaded?`);
  }
  await page.waitForTimeout(4000);

  // Give the result frame the whole window, then let the layout settle and fit it to the view.
  await page.locator('button[title="Fullscreen"]').first().click();
  await page.waitForTimeout(4000);
  await page.locator('button[aria-label="zoom-to-fit"]').first().click().catch(() => {});
  await page.waitForTimeout(1500);

  mkdirSync(dirname(target), { recursive: true });
  await page.screenshot({ path: target });

  // Guard: the password must never be visible as text on the page we captured.
  const visible = await page.evaluate(() => document.body.innerText);
  if (password && visible.includes(password)) {
    rmSync(target, { force: true });
    throw new Error('the password was visible on the page; screenshot discarded');
  }
  console.log(`wrote ${target} (query ${queryNo}, ${JSON.stringify(params)})`);
} catch (err) {
  // Leave what the page looked like for debugging (the password field is masked).
  const debug = join(tmpdir(), 'neo4j-browser-failed.png');
  await page.screenshot({ path: debug }).catch(() => {});
  console.error(`failed; the page as it was: ${debug}`);
  throw err;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
