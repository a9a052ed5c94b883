// Browser test of the Hushflow UI: playwright-core drives the system's
// headless Chromium (never a downloaded browser) against a running server.
//
//   HUSHFLOW_URL       server base URL (required)
//   HUSHFLOW_TOKEN     an admin API token (required)
//   HUSHFLOW_CHROMIUM  Chromium executable (default /usr/bin/chromium)
//   HUSHFLOW_E2E_SECRET the secret value to plant (default: a fresh canary)
//   HUSHFLOW_SCREENSHOTS where screenshots go (default test-output/screenshots)
//
// It signs in, creates a project and a project secret, builds a flow whose
// http block sends `Bearer ${secrets.X}` to a local server started here,
// runs it, opens the run inspector, and fails if the secret's value (or its
// base64, URL-escaped, JSON-escaped, HTML-escaped or hex form) appears in
// any page's HTML, any network response the page received, or the console.
// go test ./web runs it (web/e2e_test.go).

import { chromium } from 'playwright-core'
import http from 'node:http'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const base = process.env.HUSHFLOW_URL
const token = process.env.HUSHFLOW_TOKEN
if (!base || !token) {
  console.error('run.mjs: set HUSHFLOW_URL and HUSHFLOW_TOKEN')
  process.exit(2)
}
const shots = process.env.HUSHFLOW_SCREENSHOTS || path.join(here, '..', '..', 'test-output', 'screenshots')
fs.mkdirSync(shots, { recursive: true })
const secret = process.env.HUSHFLOW_E2E_SECRET || `cnry_${crypto.randomBytes(12).toString('hex')}&<>"%\\x'`
const SECRET_NAME = 'E2E_API_KEY'

// Every form of the value that must never reach the browser.
function forms(v) {
  const b = Buffer.from(v)
  const json = JSON.stringify(v).slice(1, -1)
  const goJSON = json.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
  const html = v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
  const uri = encodeURIComponent(v)
  const out = {
    raw: v,
    json,
    goJSON,
    html,
    uri,
    uriLower: uri.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    base64: b.toString('base64'),
    base64url: b.toString('base64url'),
    hex: b.toString('hex'),
    bearerBase64: Buffer.from('Bearer ' + v).toString('base64').slice(0, -4),
  }
  // The unique core alone catches a partial leak of the value.
  const core = /cnry_[0-9a-f]+/.exec(v)
  if (core) out.core = core[0]
  return out
}
const needles = Object.entries(forms(secret)).filter(([, n]) => n.length >= 8)
const leaks = []
function scan(where, text) {
  if (!text) return
  for (const [kind, n] of needles) if (text.includes(n)) leaks.push(`${where}: the secret's ${kind} form`)
}

// The local API the flow calls: it echoes the Authorization header back,
// so the run's stored response would hold the value if redaction failed.
let receivedAuth = ''
const target = http.createServer((req, res) => {
  let body = ''
  req.on('data', (d) => (body += d))
  req.on('end', () => {
    receivedAuth = req.headers['authorization'] ?? ''
    res.setHeader('Content-Type', 'application/json')
    res.setHeader('X-Echo-Authorization', receivedAuth)
    res.end(JSON.stringify({ ok: true, you_sent: receivedAuth, body }))
  })
})
await new Promise((r) => target.listen(0, '127.0.0.1', r))
const targetURL = `http://127.0.0.1:${target.address().port}/echo`

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hushflow-chromium-'))
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.HUSHFLOW_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--disable-extensions', '--disable-features=OptimizationGuideModelDownloading,OptimizationHintsFetching,OptimizationTargetPrediction,OptimizationHints,OnDeviceModelService,AutofillServerCommunication,Translate,MediaRouter'],
  viewport: { width: 1280, height: 900 },
})
const page = context.pages()[0] ?? (await context.newPage())
page.setDefaultTimeout(20000)

const consoleLines = []
const pageErrors = []
page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`))
page.on('pageerror', (e) => pageErrors.push(String(e)))
page.on('crash', () => console.log('the page crashed'))
context.on('close', () => console.log('the browser context closed'))
// Report CSP violations with their source, so that a fix knows where to look.
await context.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) =>
    console.error(`CSP violation: ${e.violatedDirective} sample=${JSON.stringify(e.sample)} at ${e.sourceFile}:${e.lineNumber}:${e.columnNumber}`),
  )
})
const bodies = []
let responses = 0
page.on('response', (r) => {
  responses++
  bodies.push(
    r.body().then(
      (b) => scan(`response ${r.request().method()} ${new URL(r.url()).pathname}`, b.toString('utf8') + '\n' + JSON.stringify(r.headers())),
      () => {},
    ),
  )
})
const pages = []
async function checkpoint(name) {
  const html = await page.content()
  pages.push(name)
  scan(`HTML of ${name}`, html)
}
const shot = (name, opts = {}) => page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true, caret: 'initial', ...opts })
const steps = []
async function step(name, f) {
  const t = Date.now()
  try {
    await f()
    steps.push(`ok   ${name} (${Date.now() - t} ms)`)
    console.log(`ok   ${name} (${Date.now() - t} ms)`)
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`)
    await shot('failure-' + name.replace(/\W+/g, '-')).catch(() => {})
    throw e
  }
}

let failed = false
try {
  await step('sign in', async () => {
    await page.goto(base + '/')
    await page.waitForURL(/\/signin/)
    await checkpoint('sign in')
    await page.getByLabel('API token').fill(token)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByText('No projects yet').waitFor()
    const cookies = await context.cookies()
    const c = cookies.find((x) => x.name === 'hushflow_session')
    if (!c || !c.httpOnly || c.sameSite !== 'Strict') throw new Error('session cookie is not HttpOnly SameSite=Strict: ' + JSON.stringify(c))
    if (cookies.some((x) => x.value.includes(token))) throw new Error('a cookie holds the API token')
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))
    if (stored.includes(token)) throw new Error('the token is in web storage')
  })

  await step('create project', async () => {
    await page.getByRole('button', { name: 'Create a project' }).click()
    await page.getByLabel('Name').fill('e2e')
    await page.getByRole('button', { name: 'Create project' }).click()
    await page.waitForURL(/\/p\/e2e\/flows$/)
    await page.getByText('No flows yet').waitFor()
  })

  await step('sidebar: the admin badge stands apart from the name, centred on it', async () => {
    const tag = page.locator('.sidebar-foot .who .tag')
    await tag.waitFor()
    // The name's box is measured with a Range, so this holds whatever element (or bare text) carries it.
    const m = await tag.evaluate((el) => {
      const who = el.parentElement
      const r = document.createRange()
      r.setStartBefore(who.firstChild)
      r.setEndBefore(el)
      const n = r.getBoundingClientRect()
      const t = el.getBoundingClientRect()
      return { gap: t.left - n.right, nameMid: (n.top + n.bottom) / 2, tagMid: (t.top + t.bottom) / 2, nameWidth: n.width }
    })
    if (!(m.nameWidth > 0)) throw new Error('no user name before the admin badge: ' + JSON.stringify(m))
    if (m.gap < 4) throw new Error(`the admin badge is ${m.gap.toFixed(1)} px from the name (want at least 4)`)
    if (Math.abs(m.nameMid - m.tagMid) > 1.5) throw new Error(`the admin badge is not centred on the name: centres ${m.nameMid.toFixed(1)} and ${m.tagMid.toFixed(1)}`)
    await page.locator('.sidebar-foot').screenshot({ path: path.join(shots, 'sidebar-foot.png') })
  })

  await step('CSRF: a state-changing request without the token is refused', async () => {
    const r = await page.evaluate(async () => {
      const res = await fetch('/api/v1/projects', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"csrf-probe"}' })
      return { status: res.status, body: await res.text() }
    })
    if (r.status !== 403 || !r.body.includes('"csrf"')) throw new Error(`POST without X-CSRF-Token: ${r.status} ${r.body}`)
    const r2 = await page.evaluate(async () => {
      const res = await fetch('/api/v1/projects', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'forged' }, body: '{"name":"csrf-probe"}' })
      return res.status
    })
    if (r2 !== 403) throw new Error('POST with a wrong X-CSRF-Token: ' + r2)
  })

  await step('create a project secret', async () => {
    await page.getByRole('link', { name: 'Secrets', exact: true }).click()
    await page.waitForURL(/\/p\/e2e\/secrets$/)
    await page.getByText('No secrets in this scope').waitFor()
    await page.getByRole('button', { name: 'Add secret', exact: true }).click()
    const dlg = page.getByRole('dialog')
    await dlg.getByLabel('Name').fill(SECRET_NAME)
    await dlg.getByLabel('Secret value').fill(secret)
    await dlg.getByLabel('Allowed hosts').fill('127.0.0.1')
    await dlg.getByRole('button', { name: 'Save secret' }).click()
    await dlg.waitFor({ state: 'detached' })
    await page.getByRole('table', { name: 'Secrets' }).getByText(SECRET_NAME).waitFor()
    // Reopening the form never shows the value.
    await page.getByRole('button', { name: 'Add secret', exact: true }).click()
    const v = await page.getByRole('dialog').getByLabel('Secret value').inputValue()
    if (v !== '') throw new Error('the value field shows a value after save')
    await page.keyboard.press('Escape')
    await page.getByRole('dialog').waitFor({ state: 'detached', timeout: 5000 })
    // A second secret, in another project's scope, must not be offered by autocomplete.
    await checkpoint('secrets')
    await shot('secrets')
  })

  await step('build a flow in the editor', async () => {
    await page.getByRole('link', { name: 'Flows', exact: true }).click()
    await page.getByRole('link', { name: 'New flow' }).first().click()
    await page.waitForURL(/\/flows\/new$/)
    await page.getByLabel('Flow name').fill('call-api')
    await page.getByLabel('New block type').selectOption('http')
    await page.getByRole('button', { name: '+ Add block' }).click()
    const block = page.locator('li.block').first()
    await block.waitFor()

    // timeout and retry are the generic block settings; the http block's
    // fields of the same names are not offered a second time.
    await block.locator('.block-options summary').click()
    for (const name of ['timeout', 'retry']) {
      const n = await block.locator(`[data-field="${name}"]`).count()
      if (n !== 0) throw new Error(`the http block shows ${name} among its fields too (${n})`)
    }
    for (const label of ['Timeout', 'Attempts', 'Backoff']) {
      const n = await block.getByLabel(label, { exact: true }).count()
      if (n !== 1) throw new Error(`the http block has ${n} ${label} controls, want 1`)
    }
    // Timeout, Attempts and Backoff sit on one line: their inputs share a top.
    const tops = {}
    for (const label of ['Timeout', 'Attempts', 'Backoff']) tops[label] = (await block.getByLabel(label, { exact: true }).boundingBox()).y
    if (Math.max(...Object.values(tops)) - Math.min(...Object.values(tops)) > 1) throw new Error('the Timeout, Attempts and Backoff inputs are not aligned: tops ' + JSON.stringify(tops))
    const timeoutish = await block.getByText(/^\s*timeout\s*$/i).count()
    if (timeoutish !== 1) throw new Error(`the http block editor shows ${timeoutish} timeout labels, want 1`)
    await block.screenshot({ path: path.join(shots, 'editor-http-block.png') })
    await block.locator('.block-options summary').click()

    // A syntax error shows at its line and column before saving.
    const url = block.locator('[data-field="url"] .cm-content')
    await url.fill("'http://127.0.0.1'\n  + )")
    const err = block.locator('[data-field="url"] .syntax-error').first()
    await err.waitFor()
    const text = await err.innerText()
    if (!/^2:5\b/.test(text.trim())) throw new Error('syntax error not at 2:5: ' + text)
    await page.waitForSelector('[data-field="url"] .cm-lintRange-error')
    await shot('editor-syntax-error')
    await url.fill(`'${targetURL}'`)
    await block.locator('[data-field="url"] .syntax-error').waitFor({ state: 'detached' })

    // Optional fields without a value are folded until opened.
    if ((await block.locator('[data-field="headers"]').isVisible())) throw new Error('the optional headers field is shown before it is used')
    const examples = await block.locator('.cm-placeholder').allTextContents()
    if (!examples.length || !examples.every((t) => /^(e\.g\. |default: )/.test(t))) throw new Error('placeholders not marked as examples: ' + JSON.stringify(examples))
    await block.locator('.more-fields summary').click()
    const ph = await block.locator('[data-field="headers"] .cm-placeholder').evaluate((el) => getComputedStyle(el).fontStyle)
    if (ph !== 'italic') throw new Error('an example placeholder is not italic: ' + ph)

    // Autocomplete offers the secret names of the scope.
    const headers = block.locator('[data-field="headers"] .cm-content')
    await headers.click()
    await page.keyboard.type('secrets.E2')
    const option = page.locator('.cm-tooltip-autocomplete li', { hasText: SECRET_NAME })
    await option.waitFor()
    await shot('editor-autocomplete')
    await page.keyboard.press('Enter')
    const got = await headers.innerText()
    if (!got.includes('secrets.' + SECRET_NAME)) throw new Error('completion not applied: ' + got)
    await headers.fill('({Authorization: `Bearer ${secrets.' + SECRET_NAME + '}`, Accept: "application/json"})')
    await block.locator('[data-field="method"] .cm-content').fill("'POST'")
    await block.locator('[data-field="body"] .cm-content').fill('({hello: input.name})')
    // A live preview through /evaluate.
    await block.locator('[data-field="body"] .cm-content').click()
    await block.locator('[data-field="body"] .preview').waitFor()

    // A second block that logs the answer, then moved and moved back.
    await page.getByLabel('New block type').selectOption('log')
    await page.getByRole('button', { name: '+ Add block' }).click()
    const log = page.locator('li.block').nth(1)
    await log.locator('[data-field="message"] .cm-content').fill('`status ${steps.http1.output.status}: ${steps.http1.output.body.you_sent}`')
    await page.getByRole('button', { name: 'Move log2 up' }).click()
    await page.getByRole('button', { name: 'Move log2 down' }).click()
    await page.getByLabel('Run input').fill('{"name": "world"}')

    // The server's save-time validation shows under the field, at line:column.
    await log.locator('.block-options summary').click()
    await log.locator('.block-options [data-setting="if"] .cm-content').fill('steps.http1.output.status ==')
    await page.getByRole('button', { name: 'Create flow' }).click()
    const problem = log.locator('.block-options .field-error').first()
    await problem.waitFor()
    if (!/^\d+:\d+ /.test((await problem.innerText()).trim())) throw new Error('server problem without line:column: ' + (await problem.innerText()))
    await shot('editor-server-error')
    await log.locator('.block-options [data-setting="if"] .cm-content').fill('steps.http1.output.status == 200')
    await checkpoint('editor')
    await shot('editor')
  })

  await step('save and run; watch the run inspector', async () => {
    await page.getByRole('button', { name: '▶ Run flow' }).click()
    await page.waitForURL(/\/p\/e2e\/runs\/[^/]+$/)
    await page.locator('.page-header .pill-succeeded').waitFor({ timeout: 60000 })
    await page.locator('.tl-block[class*="status-succeeded"]').nth(1).waitFor()
    // Open every collapsed event so the HTML holds everything shown.
    for (const d of await page.locator('details').all()) await d.evaluate((el) => (el.open = true))
    await page.getByText('HTTP ←').first().waitFor()
    await checkpoint('run inspector')
    await shot('run-inspector')
    if (receivedAuth !== 'Bearer ' + secret) throw new Error('the local server did not receive the secret in the header (got ' + JSON.stringify(receivedAuth.length) + ' chars)')
  })

  await step('runs list, flow reopened, narrow window', async () => {
    await page.getByRole('link', { name: 'Runs', exact: true }).click()
    await page.locator('.pill-succeeded').first().waitFor()
    await checkpoint('runs')
    await shot('runs')
    // Each row shows the random end of its run's id (a UUIDv7 begins with
    // its timestamp, so runs queued together looked the same).
    const idLinks = await page.locator('tbody tr td a.mono').all()
    for (const a of idLinks) {
      const full = await a.getAttribute('title')
      const shown = (await a.textContent()).trim()
      if (!full || shown !== '…' + full.slice(-8)) throw new Error('run id shown as ' + JSON.stringify(shown) + ' for ' + full)
    }
    await page.goto(base + '/p/e2e/flows/call-api')
    // A flow with blocks opens in the graph, its first block's form beside it.
    await page.locator('.gnode[data-node="log2"]').waitFor()
    await page.locator('.graph-form .block[data-block="http1"]').waitFor()
    await checkpoint('editor reopened')
    await page.setViewportSize({ width: 420, height: 900 })
    // In a narrow window the selected block's form comes right under the graph, before the run controls.
    const [g, fm, rc] = [await page.locator('.graph-card').boundingBox(), await page.locator('.graph-form').boundingBox(), await page.locator('.run-card').boundingBox()]
    if (!(g.y + g.height <= fm.y && fm.y + fm.height <= rc.y)) throw new Error('narrow editor order (graph, form, run): ' + JSON.stringify([g.y, fm.y, rc.y]))
    await shot('editor-narrow')
    await page.goBack()
    await page.locator('.pill-succeeded').first().waitFor()
    await page.locator('tbody tr').first().click()
    await page.locator('.page-header .pill-succeeded').waitFor()
    await shot('run-inspector-narrow')
    await page.setViewportSize({ width: 1280, height: 900 })
    await page.getByRole('link', { name: 'Secrets', exact: true }).click()
    await page.getByRole('table', { name: 'Secrets' }).getByText(SECRET_NAME).waitFor()
    await checkpoint('secrets again')
  })

  await step('the secret the local server echoed back shows as possibly exposed until it is updated', async () => {
    await page.goto(base + '/p/e2e/secrets')
    const row = page.getByRole('table', { name: 'Secrets' }).locator('tr', { hasText: SECRET_NAME })
    const alert = row.getByRole('alert')
    await alert.getByText('possibly exposed — rotate').waitFor()
    const text = await alert.innerText()
    if (!text.includes('block http1') || !text.includes('the response of an outside service')) throw new Error('exposure shown as ' + JSON.stringify(text))
    const href = await alert.getByRole('link').getAttribute('href')
    if (!/^\/p\/e2e\/runs\/[^/]+$/.test(href)) throw new Error('the exposure links to ' + href)
    await checkpoint('secret exposed')
    await shot('secret-exposed')
    await alert.getByRole('button', { name: 'rotate: store a new value' }).click()
    const dlg = page.getByRole('dialog')
    await dlg.getByLabel('Secret value').fill(`rotated_${crypto.randomBytes(12).toString('hex')}`)
    await dlg.getByRole('button', { name: 'Save new version' }).click()
    await dlg.waitFor({ state: 'detached' })
    await row.getByText('v2').waitFor()
    if ((await row.getByText('possibly exposed').count()) !== 0) throw new Error('the mark stayed after the update')
    await checkpoint('secret rotated')
    // The later steps run flows that compare an input with the secret's
    // value: store the planted value again (a third version).
    const auth = { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }
    const list = await (await fetch(base + '/api/v1/secrets?project=e2e', { headers: auth })).json()
    const s = list.secrets.find((x) => x.name === SECRET_NAME)
    const r = await fetch(base + '/api/v1/secrets/' + s.id, { method: 'PUT', headers: auth, body: JSON.stringify({ value: secret }) })
    if (!r.ok) throw new Error('store the planted value again: ' + r.status + ' ' + (await r.text()))
  })

  await step("an http block's own timeout set by the flow stays shown", async () => {
    const def = { name: 'own-timeout', trigger: { type: 'manual' }, blocks: [{ id: 'slow', type: 'http', config: { url: "'http://127.0.0.1/'", timeout: "'5s'" } }] }
    const r = await fetch(base + '/api/v1/projects/e2e/flows', { method: 'POST', headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }, body: JSON.stringify(def) })
    if (!r.ok) throw new Error('creating the flow through the API: ' + r.status + ' ' + (await r.text()))
    await page.goto(base + '/p/e2e/flows/own-timeout')
    const block = page.locator('.graph-form .block').first()
    await block.waitFor()
    const own = block.locator('[data-field="timeout"]')
    if ((await own.count()) !== 1) throw new Error('the flow\'s own http timeout is not shown once: ' + (await own.count()))
    if (!(await own.locator('.cm-content').innerText()).includes('5s')) throw new Error('the own timeout lost its value')
    if ((await block.locator('[data-field="retry"]').count()) !== 0) throw new Error('an unset http retry field is shown')
    await block.screenshot({ path: path.join(shots, 'editor-own-timeout.png') })
    // Saving what is saved makes no new version, and says so.
    await page.getByRole('button', { name: 'Save version' }).click()
    await page.getByText('own-timeout unchanged: still version 1').waitFor()
  })

  await step('the Secrets page shows where each secret is used, from one request', async () => {
    const auth = { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }
    for (const name of ['HOOK_ONLY', 'IDLE_ONE']) {
      const r = await fetch(base + '/api/v1/secrets', { method: 'POST', headers: auth, body: JSON.stringify({ name, value: 'value-of-' + name + '-7Qx2kP9z', project: 'e2e' }) })
      if (!r.ok) throw new Error('creating ' + name + ': ' + r.status + ' ' + (await r.text()))
    }
    // A secret named only as a webhook's signing secret is used (it showed "unused").
    const def = { name: 'hook-only', trigger: { type: 'webhook', signing_secret: 'HOOK_ONLY', signature: 'github' }, blocks: [{ id: 'l', type: 'log', config: { message: "'hi'" } }] }
    const r = await fetch(base + '/api/v1/projects/e2e/flows', { method: 'POST', headers: auth, body: JSON.stringify(def) })
    if (!r.ok) throw new Error('creating the flow: ' + r.status + ' ' + (await r.text()))
    const flowGets = []
    const onReq = (rq) => {
      if (/\/api\/v1\/projects\/e2e\/flows\/[^/?]+$/.test(new URL(rq.url()).pathname)) flowGets.push(rq.url())
    }
    page.on('request', onReq)
    await page.goto(base + '/p/e2e/secrets')
    const table = page.getByRole('table', { name: 'Secrets' })
    const hookRow = table.locator('tr', { hasText: 'HOOK_ONLY' })
    await hookRow.getByText('used by flow hook-only').waitFor()
    if ((await hookRow.getByText('unused').count()) !== 0) throw new Error('HOOK_ONLY is marked unused')
    await table.locator('tr', { hasText: 'IDLE_ONE' }).getByText('unused').waitFor()
    page.off('request', onReq)
    if (flowGets.length) throw new Error('the Secrets page fetched flows one by one: ' + flowGets.join(' '))
    await hookRow.getByRole('button', { name: 'Delete HOOK_ONLY' }).click()
    const dlg = page.getByRole('dialog')
    await dlg.getByRole('alert').getByText('HOOK_ONLY is used by flow hook-only').waitFor()
    await shot('secret-delete-used')
    await dlg.getByRole('button', { name: 'Keep it' }).click()
    await dlg.waitFor({ state: 'detached' })
  })

  await step('dark mode follows the system preference', async () => {
    const lum = (rgb) => {
      const [r, g, b] = rgb.match(/\d+/g).map(Number)
      return 0.2126 * r + 0.7152 * g + 0.0722 * b
    }
    const colors = () =>
      page.evaluate(() => {
        const b = getComputedStyle(document.body)
        const t = getComputedStyle(document.querySelector('.table') ?? document.body)
        return { bg: b.backgroundColor, text: b.color, table: t.backgroundColor }
      })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.goto(base + '/p/e2e/secrets')
    await page.getByRole('table', { name: 'Secrets' }).waitFor()
    const dark = await colors()
    if (!(lum(dark.bg) < 60 && lum(dark.text) > 180)) throw new Error('dark scheme: ' + JSON.stringify(dark))
    await shot('secrets-dark')
    await page.emulateMedia({ colorScheme: 'light' })
    const light = await colors()
    if (!(lum(light.bg) > 200 && lum(light.text) < 80)) throw new Error('light scheme: ' + JSON.stringify(light))
  })

  await step('a skipped block shows its type like the others', async () => {
    const def = {
      name: 'skips',
      trigger: { type: 'manual' },
      blocks: [
        { id: 'first', type: 'log', config: { message: "'hello'" } },
        { id: 'never', type: 'log', if: 'false', config: { message: "'not logged'" } },
      ],
    }
    const auth = { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }
    let r = await fetch(base + '/api/v1/projects/e2e/flows', { method: 'POST', headers: auth, body: JSON.stringify(def) })
    if (!r.ok) throw new Error('creating the flow through the API: ' + r.status + ' ' + (await r.text()))
    r = await fetch(base + '/api/v1/projects/e2e/flows/skips/runs?wait=30s', { method: 'POST', headers: auth, body: JSON.stringify({ environment: 'development' }) })
    if (!r.ok) throw new Error('running the flow through the API: ' + r.status + ' ' + (await r.text()))
    const run = await r.json()
    await page.goto(base + '/p/e2e/runs/' + run.id)
    const skipped = page.locator('.tl-block.status-skipped')
    await skipped.waitFor()
    await page.locator('.tl-block.status-succeeded .tl-head .tag').waitFor()
    const tag = skipped.locator('.tl-head .tag')
    // The type comes from the flow definition, fetched after the events.
    await tag.waitFor({ timeout: 5000 }).catch(() => {})
    const types = await page.locator('.tl-block .tl-head .tag').allInnerTexts()
    if (types.join(',') !== 'log,log') throw new Error('block type badges of the succeeded and the skipped block: ' + JSON.stringify(types) + ', want ["log","log"]')
    await checkpoint('run inspector with a skipped block')
    await shot('run-inspector-skipped')
  })

  await step('a run in a durable wait shows as waiting, and cancels', async () => {
    const def = {
      name: 'sleeper',
      trigger: { type: 'manual' },
      blocks: [
        { id: 'first', type: 'log', config: { message: "'hello'" } },
        { id: 'nap', type: 'delay', timeout: '2m', config: { duration: "'60s'" } },
      ],
    }
    const auth = { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }
    let r = await fetch(base + '/api/v1/projects/e2e/flows', { method: 'POST', headers: auth, body: JSON.stringify(def) })
    if (!r.ok) throw new Error('creating the flow through the API: ' + r.status + ' ' + (await r.text()))
    r = await fetch(base + '/api/v1/projects/e2e/flows/sleeper/runs', { method: 'POST', headers: auth, body: JSON.stringify({ environment: 'development' }) })
    if (!r.ok) throw new Error('running the flow through the API: ' + r.status + ' ' + (await r.text()))
    const run = await r.json()
    await page.goto(base + '/p/e2e/runs/' + run.id)
    await page.locator('.page-header .pill-waiting').waitFor()
    const note = page.locator('.alert.info')
    await note.waitFor()
    if (!/Waiting.*until.*holds no worker/s.test(await note.innerText())) throw new Error('waiting note: ' + (await note.innerText()))
    await page.locator('.tl-block.status-waiting').waitFor()
    await checkpoint('run inspector of a waiting run')
    await shot('run-inspector-waiting')
    await page.goto(base + '/p/e2e/runs?status=waiting')
    await page.locator('td .pill-waiting').first().waitFor()
    await page.goto(base + '/p/e2e/runs/' + run.id)
    await page.getByRole('button', { name: 'Cancel run' }).click()
    await page.locator('.page-header .pill-canceled').waitFor()
  })

  // Issue 18 item 5: env editing, versions, rerun, settings, projects,
  // installation delete. Each page is scanned for the secret's forms.
  const api = async (method, path, body) => {
    const r = await fetch(base + path, { method, headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await r.text()
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`)
    return text ? JSON.parse(text) : null
  }

  await step('env variables are edited in the flow editor', async () => {
    await api('POST', '/api/v1/projects/e2e/flows', {
      name: 'greet',
      trigger: { type: 'manual' },
      blocks: [{ id: 'say', type: 'code', config: { code: 'return {who: env.WHO ?? null, token_ok: input.token === secrets.' + SECRET_NAME + '}' } }],
    })
    await page.goto(base + '/p/e2e/flows/greet')
    // A flow with blocks opens in the graph: env is edited in the long form.
    await page.getByRole('button', { name: 'Form', exact: true }).click()
    await page.locator('li.block').first().waitFor()
    await page.getByRole('button', { name: /Environment variables/ }).click()
    await page.getByRole('button', { name: '+ Add variable' }).click()
    await page.getByLabel('Variable name').fill('WHO')
    await page.getByLabel('Value of WHO').fill('world')
    await page.getByRole('button', { name: '+ Add variable' }).click()
    await page.getByLabel('Variable name').nth(1).fill('bad-name')
    await page.getByText('Read it as env["bad-name"]').waitFor()
    await page.getByRole('button', { name: 'Remove bad-name' }).click()
    await checkpoint('editor env')
    await page.locator('.env-card').screenshot({ path: path.join(shots, 'editor-env.png') })
    await page.getByRole('button', { name: 'Save version' }).click()
    await page.getByText('Version 2 ·').waitFor()
    const f = await api('GET', '/api/v1/projects/e2e/flows/greet')
    if (JSON.stringify(f.definition.env) !== '{"WHO":"world"}') throw new Error('saved env: ' + JSON.stringify(f.definition.env))
    // Reopened, the variable is there to edit.
    await page.reload()
    await page.getByRole('button', { name: 'Form', exact: true }).click()
    if ((await page.getByLabel('Value of WHO').inputValue()) !== 'world') throw new Error('the env value is not shown after a reload')
  })

  await step('versions: a diff between two versions, and a rollback', async () => {
    await page.getByRole('link', { name: 'Versions' }).click()
    await page.waitForURL(/\/p\/e2e\/flows\/greet\/versions$/)
    const diff = page.getByLabel('Changes from version 1 to version 2')
    await diff.waitFor()
    const added = (await diff.locator('.diff-add').allInnerTexts()).join('\n')
    if (!added.includes('"WHO": "world"')) throw new Error('the diff from v1 to v2 does not add WHO: ' + added)
    if ((await diff.locator('.diff-del').count()) !== 0) throw new Error('the diff from v1 to v2 removes lines')
    await checkpoint('versions diff')
    await shot('versions-diff')
    await page.getByRole('button', { name: 'Roll back to version 1' }).click()
    const dlg = page.getByRole('dialog')
    await dlg.getByText('saved as a new version').waitFor()
    await shot('versions-rollback-confirm')
    await dlg.getByRole('button', { name: 'Roll back' }).click()
    await dlg.waitFor({ state: 'detached' })
    await page.getByText('greet rolled back to v1: now v3').waitFor()
    await page.locator('tr', { hasText: 'v3' }).getByText('current').waitFor()
    const f = await api('GET', '/api/v1/projects/e2e/flows/greet')
    if (f.version !== 3 || f.definition.env !== undefined) throw new Error('after the rollback: v' + f.version + ' env ' + JSON.stringify(f.definition.env))
    // v2 against v3 removes the variable again.
    await page.getByLabel('Compare from version').selectOption('2')
    await page.getByLabel('Compare to version').selectOption('3')
    await page.getByLabel('Changes from version 2 to version 3').locator('.diff-del', { hasText: '"WHO": "world"' }).waitFor()
    await checkpoint('versions after rollback')
    await shot('versions-rollback')
  })

  await step('rerun: Run again from the inspector, with the real input', async () => {
    const first = await api('POST', '/api/v1/projects/e2e/flows/greet/runs?wait=30s', { environment: 'development', input: { token: secret } })
    if (first.status !== 'succeeded' || first.output?.token_ok !== true) throw new Error('first run: ' + JSON.stringify(first))
    await page.goto(base + '/p/e2e/runs/' + first.id)
    await page.locator('.page-header .pill-succeeded').waitFor()
    await page.getByRole('button', { name: '↻ Run again' }).click()
    await page.waitForURL((u) => /\/p\/e2e\/runs\/[^/]+$/.test(u.pathname) && !u.pathname.endsWith(first.id))
    await page.locator('.page-header .pill-succeeded').waitFor({ timeout: 30000 })
    await page.locator('.page-header').getByText('rerun of').waitFor()
    const id = page.url().split('/').pop()
    const again = await api('GET', '/api/v1/runs/' + id)
    if (again.rerun_of !== first.id || again.output?.token_ok !== true) throw new Error('the rerun: ' + JSON.stringify(again))
    for (const d of await page.locator('details').all()) await d.evaluate((el) => (el.open = true))
    await checkpoint('run again')
    await shot('run-again')
  })

  await step('flow list: search and each flow\'s last run', async () => {
    await page.goto(base + '/p/e2e/flows')
    const row = page.locator('tr', { hasText: 'greet' })
    await row.locator('.last-run .pill-succeeded').waitFor()
    await page.locator('tr', { hasText: 'hook-only' }).getByText('never run').waitFor()
    await page.getByLabel('Search flows').fill('gre')
    await page.locator('tbody tr', { hasText: 'call-api' }).waitFor({ state: 'detached' })
    const names = await page.locator('tbody tr td:first-child').allInnerTexts()
    if (names.join(',') !== 'greet') throw new Error('search "gre" shows ' + JSON.stringify(names))
    await checkpoint('flow list')
    await shot('flow-list-search')
  })

  await step('flow list: pause a flow, its webhook is refused; its page resumes it', async () => {
    await page.getByLabel('Search flows').fill('')
    const row = page.locator('tbody tr', { hasText: 'hook-only' })
    await row.getByRole('button', { name: 'Pause' }).click()
    await row.locator('.tag.paused').waitFor()
    await checkpoint('flow paused')
    await shot('flow-list-paused')
    // hook-only checks GitHub's signature, made with its signing secret.
    const signed = () => ({
      method: 'POST',
      body: '{}',
      headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': 'sha256=' + crypto.createHmac('sha256', 'value-of-HOOK_ONLY-7Qx2kP9z').update('{}').digest('hex') },
    })
    const paused = await fetch(base + '/hooks/e2e/hook-only', signed())
    const body = await paused.text()
    if (paused.status !== 409 || !body.includes('flow_paused')) throw new Error(`webhook of a paused flow: ${paused.status} ${body}`)
    // The flow's page says it is paused, and resumes it.
    await page.goto(base + '/p/e2e/flows/hook-only')
    const banner = page.locator('.paused-banner')
    await banner.getByText('this flow starts no run, by any trigger, until it is resumed').waitFor()
    await shot('flow-editor-paused')
    await banner.getByRole('button', { name: 'Resume' }).click()
    await banner.waitFor({ state: 'detached' })
    await page.goto(base + '/p/e2e/flows')
    await page.locator('tbody tr', { hasText: 'hook-only' }).getByRole('button', { name: 'Pause' }).waitFor()
    const resumed = await fetch(base + '/hooks/e2e/hook-only', signed())
    if (resumed.status !== 202) throw new Error(`webhook after resume: ${resumed.status} ${await resumed.text()}`)
  })

  await step('settings: API tokens (shown once, listed, revoked)', async () => {
    await page.getByRole('link', { name: 'Settings', exact: true }).click()
    await page.waitForURL(/\/p\/e2e\/settings\/tokens$/)
    await page.getByLabel('Token name').fill('e2e-ci')
    await page.getByRole('button', { name: 'Create token' }).click()
    const once = page.locator('.token-once')
    await once.getByText('shown only this once').waitFor()
    const value = (await once.locator('.token-value').innerText()).trim()
    if (!value.startsWith('hf_')) throw new Error('the new token is not shown: ' + value.slice(0, 3))
    const table = page.getByRole('table', { name: 'Your API tokens' })
    await table.locator('tr', { hasText: 'e2e-ci' }).waitFor()
    await checkpoint('settings tokens')
    await shot('settings-tokens')
    await page.getByRole('button', { name: 'Done' }).click()
    await table.getByRole('button', { name: 'Revoke e2e-ci' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click()
    await table.locator('tr', { hasText: 'e2e-ci' }).getByText('revoked').waitFor()
    const r = await fetch(base + '/api/v1/whoami', { headers: { Authorization: 'Bearer ' + value } })
    if (r.status !== 401) throw new Error('a revoked token answers ' + r.status)
    if (await page.locator('.token-value').count()) throw new Error('the token value is still on the page')
  })

  await step('settings: users and project members', async () => {
    await page.getByRole('link', { name: 'Users', exact: true }).click()
    await page.waitForURL(/\/settings\/users$/)
    await page.getByLabel('User name').fill('ada')
    await page.getByRole('button', { name: 'Create user' }).click()
    await page.getByRole('table', { name: 'Users' }).locator('tr', { hasText: 'ada' }).waitFor()
    await checkpoint('settings users')
    await shot('settings-users')

    await page.getByRole('link', { name: 'Members', exact: true }).click()
    await page.waitForURL(/\/settings\/members$/)
    await page.getByLabel('User', { exact: true }).selectOption({ label: 'ada' })
    await page.getByLabel('Role', { exact: true }).selectOption('editor')
    await page.getByRole('button', { name: 'Add member' }).click()
    const members = page.getByRole('table', { name: 'Members of e2e' })
    const role = members.getByLabel('Role of ada')
    await role.waitFor()
    if ((await role.inputValue()) !== 'editor') throw new Error('ada is ' + (await role.inputValue()))
    await role.selectOption('viewer')
    await page.getByText('ada is now viewer').waitFor()
    const ms = await api('GET', '/api/v1/projects/e2e/members')
    if (!ms.members.some((m) => m.name === 'ada' && m.role === 'viewer')) throw new Error('members: ' + JSON.stringify(ms))
    await checkpoint('settings members')
    await shot('settings-members')
    await members.getByRole('button', { name: 'Remove ada' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Remove member' }).click()
    await page.getByText('No members').waitFor()
  })

  await step('settings: the audit of secret reads', async () => {
    await page.getByRole('link', { name: 'Secret audit', exact: true }).click()
    await page.waitForURL(/\/settings\/audit$/)
    const table = page.getByRole('table', { name: 'Secret audit' })
    await table.locator('tr', { hasText: SECRET_NAME }).first().waitFor()
    const actions = await table.locator('tbody td:nth-child(2)').allInnerTexts()
    if (!actions.length || actions.some((a) => a.trim() !== 'resolve')) throw new Error('the reads filter shows ' + JSON.stringify([...new Set(actions)]))
    await page.getByLabel('Secret name or id').fill('NO_SUCH_SECRET')
    await page.getByRole('button', { name: 'Filter' }).click()
    await page.getByText('No audit record matches').waitFor()
    await page.getByLabel('Secret name or id').fill(SECRET_NAME)
    await page.getByLabel('Action').selectOption('')
    await page.getByRole('button', { name: 'Filter' }).click()
    await table.locator('tr', { hasText: 'create' }).first().waitFor()
    await checkpoint('settings audit')
    await shot('settings-audit')
  })

  await step('projects list', async () => {
    await page.getByRole('link', { name: 'All projects' }).click()
    await page.waitForURL(/\/projects$/)
    await page.getByRole('table', { name: 'Projects' }).getByRole('link', { name: 'e2e' }).waitFor()
    await checkpoint('projects')
    await shot('projects')
  })

  await step('apps: an installation shows which flows use it, and deletes with a warning', async () => {
    await api('POST', '/api/v1/projects/e2e/installations', { app: 'slack', name: 'bot', config: { bot_token: 'secrets.' + SECRET_NAME } })
    await api('POST', '/api/v1/projects/e2e/flows', {
      name: 'notify-bot',
      trigger: { type: 'manual' },
      blocks: [{ id: 'post', type: 'app', config: { installation: "'bot'", action: "'post_message'", with: { channel: 'C1', text: 'hi' } } }],
    })
    await page.goto(base + '/p/e2e/installations')
    const row = page.locator('tr', { hasText: 'slack' })
    await row.locator('.used-by').getByText('notify-bot').waitFor()
    await checkpoint('installations')
    await shot('installations-used-by')
    await row.getByRole('button', { name: 'Delete bot' }).click()
    const dlg = page.getByRole('dialog')
    await dlg.getByRole('alert').getByText('bot is used by flow notify-bot').waitFor()
    await shot('installation-delete')
    await dlg.getByRole('button', { name: 'Delete installation' }).click()
    await dlg.waitFor({ state: 'detached' })
    await page.getByText('Nothing installed yet').waitFor()
  })

  // A flow with parallel branches (needs), a loop (each with concurrency),
  // a sub-flow call and an on_error handler, built through the API (api,
  // above), then seen and changed in the editor's graph, run, and read in
  // the inspector.
  const nodeBox = async (id) => page.locator(`.gnode[data-node="${id}"]`).boundingBox()
  const edges = async (kind) =>
    (await page.locator(`path.gedge.${kind}[data-to]`).evaluateAll((ps) => ps.map((p) => `${p.dataset.from}->${p.dataset.to}`))).sort()

  await step('the graph view draws branches, a loop, a sub-flow and on_error', async () => {
    await api('POST', '/api/v1/projects/e2e/flows', { name: 'e2e-child', trigger: { type: 'manual' }, blocks: [{ id: 'got', type: 'code', config: { code: 'return {n: input.n}' } }] })
    await api('POST', '/api/v1/projects/e2e/flows', {
      name: 'fanout',
      trigger: { type: 'manual' },
      blocks: [
        { id: 'a', type: 'delay', config: { duration: "'1s'" } },
        { id: 'b', type: 'delay', needs: [], config: { duration: "'1s'" } },
        {
          id: 'loop', type: 'code', needs: ['a', 'b'], each: 'input.items', concurrency: 2, if: 'item != 3', continue_on_error: true,
          config: { code: "if (item === 4) throw new Error('four'); return item * 10" },
        },
        { id: 'child', type: 'flow', config: { flow: "'e2e-child'", input: '({n: steps.loop.output.length})' } },
        { id: 'report', type: 'code', config: { code: 'return {loop: steps.loop.output, child: steps.child.output, a: steps.a.output}' } },
      ],
      on_error: [{ id: 'alert', type: 'log', config: { message: '`failed: ${error}`' } }],
    })
    await page.goto(base + '/p/e2e/flows/fanout')
    const graph = page.getByRole('group', { name: 'Flow graph' })
    await graph.waitFor()
    const ids = await graph.locator('.gnode').evaluateAll((ns) => ns.map((n) => n.dataset.node))
    if (ids.sort().join(',') !== 'a,alert,b,child,loop,report,trigger') throw new Error('graph nodes: ' + ids.join(','))
    const deps = await edges('dep')
    const wantDeps = ['a->loop', 'b->loop', 'child->report', 'loop->child', 'trigger->a', 'trigger->b']
    if (deps.join(' ') !== wantDeps.join(' ')) throw new Error('dependency edges: ' + deps.join(' ') + ', want ' + wantDeps.join(' '))
    // report reads steps.loop and steps.a, which it runs after only through child: dashed.
    const refs = await edges('ref')
    if (refs.join(' ') !== 'a->report loop->report') throw new Error('steps edges (dashed): ' + refs.join(' '))
    const dash = await page.locator('path.gedge.ref').first().evaluate((p) => getComputedStyle(p).strokeDasharray)
    if (!dash || dash === 'none') throw new Error('the steps edge is not dashed: ' + dash)
    // a and b start together: one level, side by side; loop under both.
    const [a, b, loop, alert, report] = [await nodeBox('a'), await nodeBox('b'), await nodeBox('loop'), await nodeBox('alert'), await nodeBox('report')]
    if (Math.abs(a.y - b.y) > 1 || Math.abs(a.x - b.x) < a.width) throw new Error(`branches a and b not side by side: ${JSON.stringify([a, b])}`)
    if (!(loop.y > a.y + a.height)) throw new Error('loop is not below the branches it needs')
    const each = (await page.locator('.gnode[data-node="loop"] .gbadge.each').innerText()).trim()
    if (each !== 'each · 2 at once') throw new Error('the loop badge: ' + each)
    const called = (await page.locator('.gnode[data-node="child"] .gbadge.flow').innerText()).trim()
    if (called !== '→ e2e-child') throw new Error('the flow node: ' + called)
    const conds = await page.locator('.gcond[data-to="loop"]').allInnerTexts()
    // Where loop's two incoming edges meet.
    if (conds.length !== 1 || conds[0].trim() !== 'if item != 3') throw new Error("loop's condition on its incoming edges: " + JSON.stringify(conds))
    const cb = await page.locator('.gcond[data-to="loop"]').boundingBox()
    if (!(cb.y + cb.height <= loop.y + 1 && cb.y > b.y + b.height && Math.abs(cb.x + cb.width / 2 - (loop.x + loop.width / 2)) < 2)) throw new Error("loop's condition is not on its incoming edges, above it")
    if (!(await page.locator('.gnode[data-node="alert"]').getAttribute('class')).includes('handler') || !(alert.y > report.y + report.height)) throw new Error('the on_error block is not in its lane under the graph')
    await page.getByText('on_error: runs when a block fails the run').waitFor()
    // The first block is selected: its form is beside the graph.
    await page.locator('.graph-form .block[data-block="a"]').waitFor()
    await checkpoint('editor graph')
    await shot('editor-graph')
  })

  await step('the graph: a node selected, a field and needs set in its form, saved', async () => {
    await page.locator('.gnode[data-node="child"]').click()
    const child = page.locator('.graph-form .block[data-block="child"]')
    await child.waitFor()
    if ((await page.locator('.gnode[data-node="child"]').getAttribute('aria-pressed')) !== 'true') throw new Error('the clicked node is not marked selected')
    // Settings not set are folded under More settings.
    if (await child.locator('.block-options').getAttribute('open') !== null) throw new Error("More settings is open for a block that sets none")
    await child.locator('.block-options summary').click()
    await child.getByRole('group', { name: 'child needs' }).getByLabel('a', { exact: true }).check()
    await child.locator('[data-field="input"] .cm-content').fill('({n: input.items.length})')
    await page.locator('.gnode[data-node="report"]').click()
    const report = page.locator('.graph-form .block[data-block="report"]')
    await report.locator('.block-options summary').click()
    const needs = report.getByRole('group', { name: 'report needs' })
    await needs.getByLabel('child', { exact: true }).check()
    await needs.getByLabel('loop', { exact: true }).check()
    await shot('editor-graph-form')
    await page.getByRole('button', { name: 'Save version' }).click()
    await page.getByText('Saved fanout version 2').waitFor()
    const saved = (await api('GET', '/api/v1/projects/e2e/flows/fanout')).definition
    const by = Object.fromEntries(saved.blocks.map((x) => [x.id, x]))
    if (JSON.stringify(by.child.needs) !== '["a"]') throw new Error('child needs saved as ' + JSON.stringify(by.child.needs))
    if (JSON.stringify(by.report.needs) !== '["loop","child"]') throw new Error('report needs saved as ' + JSON.stringify(by.report.needs))
    if (by.child.config.input !== '({n: input.items.length})') throw new Error('child input saved as ' + JSON.stringify(by.child.config.input))
    if (by.loop.each !== 'input.items' || by.loop.concurrency !== 2 || JSON.stringify(by.b.needs) !== '[]' || by.a.needs !== undefined) throw new Error('settings the form did not touch changed: ' + JSON.stringify(saved.blocks))
    if (saved.on_error?.[0]?.id !== 'alert') throw new Error('on_error lost on save: ' + JSON.stringify(saved.on_error))
    // Drawn again: child beside loop, after a; report reads only steps.a beyond its needs.
    const refs = await edges('ref')
    if (refs.join(' ') !== 'a->report') throw new Error('steps edges after the change: ' + refs.join(' '))
    const [loop, child2] = [await nodeBox('loop'), await nodeBox('child')]
    if (Math.abs(loop.y - child2.y) > 1) throw new Error('child does not sit beside loop once it needs only a')
    await checkpoint('editor graph after needs')
    await shot('editor-graph-needs')
  })

  let fanoutRun = ''
  await step('run from the graph: the inspector groups iterations, shows branches side by side and links the sub-flow', async () => {
    await page.getByLabel('Run input').fill('{"items": [1, 2, 3, 4]}')
    await page.getByRole('button', { name: '▶ Run flow' }).click()
    await page.waitForURL(/\/p\/e2e\/runs\/[^/]+$/)
    fanoutRun = page.url().split('/').pop()
    await page.locator('.page-header .pill-succeeded').waitFor({ timeout: 60000 })
    await page.locator('.tl-block[data-block="report"].status-succeeded').waitFor()
    // The loop: 4 iterations, each with its own status.
    const its = page.locator('.tl-block[data-block="loop"] [data-testid="iterations"]')
    await its.waitFor()
    const st = await its.locator('li.iteration').evaluateAll((ls) => ls.map((l) => `${l.dataset.index}:${[...l.classList].find((c) => c.startsWith('status-'))}`))
    if (st.join(' ') !== '0:status-succeeded 1:status-succeeded 2:status-skipped 3:status-failed') throw new Error('iterations: ' + st.join(' '))
    const head = await its.locator('.iterations-head').innerText()
    if (!/4 iterations.*2 at once.*2 succeeded.*1 skipped.*1 failed/s.test(head)) throw new Error('iterations summary: ' + head)
    await its.locator('li.iteration[data-index="3"] > details > summary').click()
    await its.locator('li.iteration[data-index="3"] .alert.error').getByText('four').waitFor()
    // Iteration events are not repeated among the block's own.
    if ((await page.locator('.tl-block[data-block="loop"] .tl-card > .events .ev').count()) !== 2) throw new Error("the loop's own events are not just started and finished")
    // Parallel branches: a and b ran at the same time, and say so.
    const par = (await page.locator('.tl-block[data-block="a"] [data-testid="parallel"]').innerText()).trim()
    if (!par.includes('alongside b')) throw new Error('a is not shown alongside b: ' + par)
    const span = (id) => page.locator(`.tl-block[data-block="${id}"] .tl-head .tl-span`).evaluate((e) => ({ s: +e.dataset.start, e: +e.dataset.end, box: e.getBoundingClientRect().toJSON() }))
    const [sa, sb, sr] = [await span('a'), await span('b'), await span('report')]
    if (!(sa.s < sb.e && sb.s < sa.e) || !(sa.box.left < sb.box.right && sb.box.left < sa.box.right)) throw new Error('the bars of a and b do not overlap: ' + JSON.stringify([sa, sb]))
    if (!(sr.box.left >= sa.box.right - 1)) throw new Error('report starts before a ended on the bars: ' + JSON.stringify([sa.box, sr.box]))
    if ((await page.locator('.tl-block[data-block="report"] [data-testid="parallel"]').count()) !== 0) throw new Error('report, alone at the end, is marked parallel')
    for (const d of await page.locator('details').all()) await d.evaluate((el) => (el.open = true))
    await checkpoint('run inspector of the graph flow')
    await shot('run-inspector-graph')
    await page.locator('.tl-block[data-block="loop"]').screenshot({ path: path.join(shots, 'run-inspector-iterations.png') })
    // The flow block links to its child run, which links back.
    const link = page.locator('.tl-block[data-block="child"] [data-testid="child-run-link"]')
    await link.getByText('e2e-child').waitFor()
    await link.locator('.pill-succeeded').waitFor()
    await page.locator('[data-testid="child-runs"]').getByText('e2e-child').waitFor()
    await link.locator('a').click()
    await page.locator('[data-testid="parent-run"]').getByText(fanoutRun).waitFor()
    await page.locator('.tl-block[data-block="got"].status-succeeded').waitFor()
    await checkpoint('child run inspector')
    await shot('run-inspector-child')
    await page.goto(base + '/p/e2e/runs')
    const row = page.locator('tbody tr', { hasText: 'e2e-child' }).first()
    await row.getByText('sub-flow of child').waitFor()
    await checkpoint('runs with a sub-flow run')
    await shot('runs-subflow')
  })

  await step("the graph shows each block's status in the last run", async () => {
    await page.goto(base + '/p/e2e/flows/fanout')
    await page.locator('[data-testid="last-run"] .pill-succeeded').waitFor()
    for (const id of ['a', 'b', 'loop', 'child', 'report']) await page.locator(`.gnode[data-node="${id}"] .gstatus.status-succeeded`).waitFor()
    await page.locator('.gnode[data-node="alert"] .gstatus.status-none').waitFor()
    await page.locator('.gnode[data-node="trigger"] .gstatus.status-succeeded').waitFor()
    const href = await page.locator('[data-testid="last-run"] a').getAttribute('href')
    if (!href.endsWith('/runs/' + fanoutRun)) throw new Error('the last run links to ' + href + ', want run ' + fanoutRun)
    // The long form is one click away and has every block.
    await page.getByRole('button', { name: 'Form', exact: true }).click()
    if ((await page.locator('li.block').count()) !== 5) throw new Error('the form view does not list the 5 blocks')
    await page.getByRole('button', { name: 'Graph', exact: true }).click()
    await page.locator('.gnode[data-node="loop"]').click()
    await page.locator('.graph-form .block[data-block="loop"] .block-options[open]').waitFor()
    await checkpoint('editor graph with statuses')
    await shot('editor-graph-status')
  })

  await step('the redaction self-test from the Secrets page reports all masked', async () => {
    await page.goto(base + '/p/e2e/secrets')
    await page.getByRole('link', { name: 'Redaction self-test' }).click()
    await page.waitForURL(/\/p\/e2e\/doctor$/)
    await page.getByRole('complementary').getByLabel('Environment').selectOption('development')
    await page.getByRole('button', { name: 'Run redaction self-test' }).click()
    const summary = page.getByTestId('doctor-summary')
    await summary.waitFor({ timeout: 60000 })
    const text = await summary.textContent()
    if (!/^All masked: 12 sinks × 7 forms in development/.test(text)) throw new Error('self-test summary: ' + text)
    const table = page.getByRole('table', { name: 'Self-test results' })
    if ((await table.locator('tbody tr').count()) !== 84) throw new Error('self-test rows: ' + (await table.locator('tbody tr').count()))
    if ((await table.locator('.pill-failed').count()) !== 0) throw new Error('a sink leaked')
    await checkpoint('redaction self-test')
    await shot('doctor')
  })

  await step("an exec block's output lines show as lines in the inspector (issue 18 item 1)", async () => {
    await api('POST', '/api/v1/projects/e2e/flows', {
      name: 'shell',
      trigger: { type: 'manual' },
      blocks: [{ id: 'sh', type: 'exec', config: { command: ['echo "line one $TOKEN"; echo "line two" >&2'], shell: true, secrets: [{ key: SECRET_NAME, as_env_var: 'TOKEN' }] } }],
    })
    const run = await api('POST', '/api/v1/projects/e2e/flows/shell/runs?wait=30s', { environment: 'development' })
    if (run.status !== 'succeeded') throw new Error('exec run: ' + JSON.stringify(run))
    await page.goto(base + '/p/e2e/runs/' + run.id)
    await page.getByText('line two').first().waitFor()
    const text = await page.locator('main').innerText()
    if (!text.includes('line one [REDACTED')) throw new Error('the stdout line is not shown masked: ' + text.slice(0, 2000))
    const around = text.slice(Math.max(0, text.indexOf('line one') - 300), text.indexOf('line two') + 100)
    if (around.includes('"stream"') || around.includes('"level"') || around.includes('[info] null')) throw new Error('an exec log line is shown as raw JSON or null: ' + around)
    await checkpoint('exec log lines')
    await shot('run-inspector-exec')
  })

  await step('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(/\/signin/)
    const r = await page.evaluate(async () => (await fetch('/api/v1/projects')).status)
    if (r !== 401) throw new Error('after sign out the API answers ' + r)
  })
} catch (e) {
  failed = true
}

await Promise.race([Promise.all(bodies), new Promise((r) => setTimeout(r, 10000))])
console.log(consoleLines.join("\n"))
for (const l of [...consoleLines, ...pageErrors]) scan('console', l)
const csp = consoleLines.filter((l) => /Content Security Policy/i.test(l))
await context.close()
target.close()
fs.rmSync(userDataDir, { recursive: true, force: true })

console.log(`\nscanned ${pages.length} pages, ${responses} network responses, ${consoleLines.length} console messages for ${needles.length} forms of the secret`)
if (pageErrors.length) console.log('page errors:\n  ' + pageErrors.join('\n  '))
if (csp.length) console.log('CSP violations:\n  ' + csp.join('\n  '))
if (leaks.length) console.log('LEAKS:\n  ' + [...new Set(leaks)].join('\n  '))
console.log(`screenshots in ${shots}`)
if (failed || leaks.length || csp.length || pageErrors.length) {
  console.log('FAIL')
  process.exit(1)
}
console.log('PASS')
