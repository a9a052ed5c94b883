import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { get, post, put, del, enc, ApiError, type BlockDef, type BlockType, type Definition, type Field, type Flow, type Problem, type Run, type Secret } from '../api'
import { useApp } from '../app'
import { Link, navigate } from '../router'
import { ExprEditor, syntaxErrors, type CompletionScope, type Located, type SourceKind } from '../editor'
import { ErrorBox, Modal, PageHeader, Spinner } from '../ui'
import { EnvEditor, envObject, envRows, type EnvRow } from './EnvEditor'

interface EditBlock {
  uid: number
  id: string
  type: string
  config: Record<string, string>
  if: string
  timeout: string
  attempts: string
  backoff: string
  continueOnError: boolean
  /** Settings of the block the editor does not edit yet (a loop's), kept as they are on save. */
  kept: Pick<BlockDef, 'each' | 'concurrency' | 'max_items' | 'needs'>
}

interface EditFlow {
  name: string
  description: string
  trigger: { type: string; cron: string; environment: string; topic: string; filter: string; signing_secret: string; signature: string }
  blocks: EditBlock[]
  env: EnvRow[]
  /** Parts of the definition the editor does not edit yet, kept as they are on save. */
  kept: Pick<Definition, 'on_error' | 'max_concurrent_runs' | 'output'>
}

let uidSeq = 1

/**
 * Settings every block has, edited under "Condition, timeout, retries and errors".
 * A block type's own config field of the same name (the http block's
 * timeout and retry) is not offered a second time among its fields; it is
 * shown only when the flow already sets it, so a stored value stays visible
 * and editable.
 */
const commonSettings = new Set(['timeout', 'retry'])

/** toSource turns a stored config value into editor text: strings are expressions, literals become their JSON. */
function toSource(v: unknown): string {
  if (typeof v === 'string') return v
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return '(' + JSON.stringify(v, null, 2) + ')'
  return JSON.stringify(v)
}

function fromDefinition(d: Definition): EditFlow {
  return {
    name: d.name,
    description: d.description ?? '',
    trigger: {
      type: d.trigger?.type ?? 'manual',
      cron: d.trigger?.cron ?? '',
      environment: d.trigger?.environment ?? '',
      topic: d.trigger?.topic ?? '',
      filter: d.trigger?.filter ?? '',
      signing_secret: d.trigger?.signing_secret ?? '',
      signature: d.trigger?.signature ?? '',
    },
    blocks: (d.blocks ?? []).map((b) => ({
      uid: uidSeq++,
      id: b.id,
      type: b.type,
      config: Object.fromEntries(Object.entries(b.config ?? {}).map(([k, v]) => [k, toSource(v)])),
      if: b.if ?? '',
      timeout: b.timeout === undefined ? '' : String(b.timeout),
      attempts: b.retry?.attempts ? String(b.retry.attempts) : '',
      backoff: b.retry?.backoff === undefined ? '' : String(b.retry.backoff),
      continueOnError: !!b.continue_on_error,
      kept: { each: b.each, concurrency: b.concurrency, max_items: b.max_items, needs: b.needs },
    })),
    env: envRows(d.env),
    kept: { on_error: d.on_error, max_concurrent_runs: d.max_concurrent_runs, output: d.output },
  }
}

function toDefinition(f: EditFlow): Definition {
  const t: any = { type: f.trigger.type }
  for (const k of ['cron', 'environment', 'topic', 'filter', 'signing_secret', 'signature'] as const) if (f.trigger[k].trim()) t[k] = f.trigger[k].trim()
  return {
    name: f.name.trim(),
    description: f.description.trim() || undefined,
    trigger: t,
    env: envObject(f.env),
    blocks: f.blocks.map((b) => {
      const config: Record<string, string> = {}
      for (const [k, v] of Object.entries(b.config)) if (v.trim() !== '') config[k] = v
      const out: any = { id: b.id.trim(), type: b.type, config }
      if (b.if.trim()) out.if = b.if.trim()
      if (b.timeout.trim()) out.timeout = /^\d+$/.test(b.timeout.trim()) ? Number(b.timeout) : b.timeout.trim()
      if (b.attempts.trim()) {
        out.retry = { attempts: Number(b.attempts) }
        if (b.backoff.trim()) out.retry.backoff = /^\d+$/.test(b.backoff.trim()) ? Number(b.backoff) : b.backoff.trim()
      }
      if (b.continueOnError) out.continue_on_error = true
      for (const [k, v] of Object.entries(b.kept ?? {})) if (v !== undefined) out[k] = v
      return out
    }),
    ...f.kept,
  }
}

const emptyFlow = (): EditFlow => ({
  name: '',
  description: '',
  trigger: { type: 'manual', cron: '', environment: '', topic: '', filter: '', signing_secret: '', signature: '' },
  blocks: [],
  env: [],
  kept: {},
})

function inputKeys(text: string): string[] {
  try {
    const v = JSON.parse(text)
    return v && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : []
  } catch {
    return []
  }
}

interface Preview {
  key: string
  busy: boolean
  value?: unknown
  error?: string
}

function FieldRow(props: {
  block: EditBlock
  field: Field
  value: string
  problems: Problem[]
  scope: () => CompletionScope
  onChange: (v: string) => void
  preview: Preview | null
  onFocusField: () => void
  onSave: () => void
}) {
  const { field, block } = props
  const kind: SourceKind = field.raw ? 'code' : 'field'
  const syntax = syntaxErrors(props.value, kind)
  const located: Located[] = props.problems.map((p) => ({ line: p.line ?? 0, column: p.column ?? 0, message: p.message }))
  const domId = `f-${block.uid}-${field.name}`
  return (
    <div class={'field' + (syntax.length || props.problems.length ? ' has-error' : '')} data-field={field.name}>
      <div class="field-label">
        <label for={domId} id={domId + '-l'}>
          <span class="mono">{field.name}</span>
          {field.required && (
            <span class="req" title="required">
              *
            </span>
          )}
        </label>
        <span class="tag">{field.type}</span>
        {field.secret && <span class="tag secret">secret</span>}
        <span class="doc">{field.doc}</span>
      </div>
      <ExprEditor
        id={domId}
        label={`${block.id} ${field.name}`}
        kind={kind}
        value={props.value}
        onChange={props.onChange}
        scope={props.scope}
        problems={located}
        placeholder={field.example ?? (field.default !== undefined ? `default: ${JSON.stringify(field.default)}` : '')}
        onFocus={props.onFocusField}
        onSave={props.onSave}
      />
      {syntax.map((e) => (
        <div class="field-error syntax-error" role="alert">
          <span class="loc">
            {e.line}:{e.column}
          </span>{' '}
          {e.message}
        </div>
      ))}
      {props.problems.map((p) => (
        <div class="field-error server-error" role="alert">
          {p.line ? (
            <span class="loc">
              {p.line}:{p.column}
            </span>
          ) : null}{' '}
          {p.message}
        </div>
      ))}
      {props.preview && !syntax.length && (
        <div class={'preview' + (props.preview.error ? ' preview-error' : '')} aria-live="polite">
          <span class="preview-label">{props.preview.busy ? 'evaluating…' : 'preview'}</span>
          {props.preview.error ? <span>{props.preview.error}</span> : <code>{props.preview.value === undefined ? 'undefined' : JSON.stringify(props.preview.value)}</code>}
        </div>
      )}
    </div>
  )
}

export function FlowEditor({ project, flow }: { project: string; flow?: string }) {
  const app = useApp()
  const env = app.environment
  const [f, setF] = useState<EditFlow | null>(flow ? null : emptyFlow())
  const [meta, setMeta] = useState<Flow | null>(null)
  const [types, setTypes] = useState<BlockType[]>([])
  const [secrets, setSecrets] = useState<Secret[]>([])
  const [loadErr, setLoadErr] = useState<unknown>(null)
  const [problems, setProblems] = useState<Problem[]>([])
  const [saveErr, setSaveErr] = useState<unknown>(null)
  const [warnings, setWarnings] = useState<string[]>([])
  const [saving, setSaving] = useState(false)
  const [dirty, setDirty] = useState(false)
  const [input, setInput] = useState('{}')
  const [running, setRunning] = useState(false)
  const [preview, setPreview] = useState<Preview | null>(null)
  const [focus, setFocus] = useState<{ uid: number; field: string } | null>(null)
  const [addType, setAddType] = useState('http')
  const [confirmDelete, setConfirmDelete] = useState(false)
  const latest = useRef({ f, secrets, input })
  latest.current = { f, secrets, input }

  useEffect(() => {
    get<{ blocks: BlockType[] }>('/api/v1/blocks')
      .then((r) => setTypes(r.blocks ?? []))
      .catch(setLoadErr)
    if (flow)
      get<Flow & { definition: Definition }>(`/api/v1/projects/${enc(project)}/flows/${enc(flow)}`)
        .then((r) => {
          setMeta(r)
          setF(fromDefinition(r.definition))
        })
        .catch(setLoadErr)
  }, [project, flow])

  useEffect(() => {
    get<{ secrets: Secret[] }>(`/api/v1/secrets?project=${enc(project)}&environment=${enc(env)}&resolved=true`)
      .then((r) => setSecrets(r.secrets ?? []))
      .catch(() => setSecrets([]))
  }, [project, env])

  const update = (g: (x: EditFlow) => EditFlow) => {
    setF((x) => (x ? g(x) : x))
    setDirty(true)
  }
  const setBlock = (uid: number, g: (b: EditBlock) => EditBlock) => update((x) => ({ ...x, blocks: x.blocks.map((b) => (b.uid === uid ? g(b) : b)) }))

  const scopeFor = (uid: number) => (): CompletionScope => {
    const cur = latest.current
    const blocks = cur.f?.blocks ?? []
    const i = blocks.findIndex((b) => b.uid === uid)
    return {
      secrets: cur.secrets.map((s) => ({ name: s.name, detail: s.from ?? s.scope_label })),
      steps: blocks.slice(0, Math.max(i, 0)).map((b) => ({ id: b.id, type: b.type })),
      input: inputKeys(cur.input),
      env: (cur.f?.env ?? []).map((r) => r.key.trim()).filter(Boolean),
    }
  }

  // Live preview of the focused field through /evaluate (redacted by the server).
  const focusedValue = focus && f ? f.blocks.find((b) => b.uid === focus.uid)?.config[focus.field] ?? '' : ''
  useEffect(() => {
    if (!focus || !f) return
    const b = f.blocks.find((x) => x.uid === focus.uid)
    const spec = types.find((t) => t.id === b?.type)?.spec.fields.find((x) => x.name === focus.field)
    const src = focusedValue
    const key = `${focus.uid}/${focus.field}`
    if (!b || spec?.raw || !src.trim() || syntaxErrors(src, 'field').length) {
      setPreview(null)
      return
    }
    let parsed: unknown = {}
    try {
      parsed = JSON.parse(input || '{}')
    } catch {
      /* preview with an empty input */
    }
    const ctl = { stop: false }
    const t = setTimeout(async () => {
      setPreview((p) => ({ ...(p?.key === key ? p : {}), key, busy: true }))
      try {
        const r = await post<{ value: unknown }>(`/api/v1/projects/${enc(project)}/evaluate`, { expression: src, environment: env, input: parsed })
        if (!ctl.stop) setPreview({ key, busy: false, value: r.value })
      } catch (e) {
        const ae = e as ApiError
        if (!ctl.stop) setPreview({ key, busy: false, error: (ae.line ? `${ae.line}:${ae.column} ` : '') + ae.message })
      }
    }, 500)
    return () => {
      ctl.stop = true
      clearTimeout(t)
    }
  }, [focus?.uid, focus?.field, focusedValue, env, input])

  const save = async (): Promise<boolean> => {
    const cur = latest.current.f
    if (!cur) return false
    setSaving(true)
    setSaveErr(null)
    setProblems([])
    try {
      const def = toDefinition(cur)
      const r = flow
        ? await put<Flow & { warnings?: string[]; unchanged?: boolean }>(`/api/v1/projects/${enc(project)}/flows/${enc(flow)}`, def)
        : await post<Flow & { warnings?: string[]; unchanged?: boolean }>(`/api/v1/projects/${enc(project)}/flows`, def)
      setMeta(r)
      setWarnings(r.warnings ?? [])
      setDirty(false)
      app.toast(r.unchanged ? `${r.name} unchanged: still version ${r.version}` : `Saved ${r.name} version ${r.version}`)
      if (!flow) navigate(`/p/${enc(project)}/flows/${enc(r.name)}`, true)
      return true
    } catch (e) {
      if (e instanceof ApiError && e.problems.length) {
        setProblems(e.problems)
        setSaveErr(new Error(`The flow has ${e.problems.length} problem${e.problems.length > 1 ? 's' : ''}; see the fields marked below.`))
      } else setSaveErr(e)
      return false
    } finally {
      setSaving(false)
    }
  }
  const saveRef = useRef(save)
  saveRef.current = save
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.metaKey || e.ctrlKey) && e.key === 's') {
        e.preventDefault()
        saveRef.current()
      }
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [])

  const run = async () => {
    let parsed: unknown
    try {
      parsed = JSON.parse(input || '{}')
    } catch (e) {
      app.toast('The run input is not valid JSON: ' + (e as Error).message, 'error')
      return
    }
    if ((dirty || !flow) && !(await save())) return
    const name = flow ?? latest.current.f?.name
    setRunning(true)
    try {
      const r = await post<Run>(`/api/v1/projects/${enc(project)}/flows/${enc(name!)}/runs`, { environment: env, input: parsed })
      navigate(`/p/${enc(project)}/runs/${enc(r.id)}`)
    } catch (e) {
      app.toast((e as Error).message, 'error')
    } finally {
      setRunning(false)
    }
  }

  const typeMap = useMemo(() => new Map(types.map((t) => [t.id, t])), [types])
  if (loadErr) return <ErrorBox error={loadErr} retry={() => location.reload()} />
  if (!f || !types.length) return <Spinner label="Loading the editor…" />

  const addBlock = () => {
    const n = f.blocks.length + 1
    let id = `${addType}${n}`
    for (let i = n; f.blocks.some((b) => b.id === id); i++) id = `${addType}${i}`
    update((x) => ({ ...x, blocks: [...x.blocks, { uid: uidSeq++, id, type: addType, config: {}, if: '', timeout: '', attempts: '', backoff: '', continueOnError: false, kept: {} }] }))
  }
  const move = (i: number, d: number) =>
    update((x) => {
      const bs = [...x.blocks]
      const j = i + d
      if (j < 0 || j >= bs.length) return x
      ;[bs[i], bs[j]] = [bs[j], bs[i]]
      return { ...x, blocks: bs }
    })
  const problemsOf = (blockID: string, field: string) => problems.filter((p) => p.block === blockID && p.field === field)
  const flowProblems = problems.filter((p) => !p.block || !f.blocks.some((b) => b.id === p.block))
  const blockProblems = (id: string, fields: string[]) => problems.filter((p) => p.block === id && !fields.includes(p.field ?? ''))
  const totalSyntax = f.blocks.reduce(
    (n, b) => n + Object.entries(b.config).filter(([k, v]) => syntaxErrors(v, typeMap.get(b.type)?.spec.fields.find((x) => x.name === k)?.raw ? 'code' : 'field').length > 0).length,
    0,
  )

  return (
    <section class="editor-page">
      <PageHeader
        title={flow ? <span class="mono">{flow}</span> : 'New flow'}
        sub={meta ? `Version ${meta.version} · saved by ${meta.updated_by}` : 'Not saved yet'}
      >
        {dirty && <span class="unsaved">Unsaved changes</span>}
        {flow && (
          <Link class="btn ghost" href={`/p/${enc(project)}/flows/${enc(flow)}/versions`}>
            Versions
          </Link>
        )}
        {flow && (
          <button class="btn ghost danger" onClick={() => setConfirmDelete(true)}>
            Delete
          </button>
        )}
        <button class="btn primary" onClick={() => save()} disabled={saving} title="Save (Ctrl+S)">
          {saving ? 'Saving…' : flow ? 'Save version' : 'Create flow'}
        </button>
      </PageHeader>

      {saveErr ? <ErrorBox error={saveErr} title="Not saved" /> : null}
      {totalSyntax > 0 && (
        <div class="alert warn" role="status">
          {totalSyntax} field{totalSyntax > 1 ? 's have' : ' has a'} syntax error{totalSyntax > 1 ? 's' : ''}; the server will refuse to save until fixed.
        </div>
      )}
      {flowProblems.length > 0 && (
        <ul class="problems">
          {flowProblems.map((p) => (
            <li>
              {p.block && <span class="mono">{p.block} </span>}
              {p.field && <span class="mono">{p.field}: </span>}
              {p.message}
            </li>
          ))}
        </ul>
      )}
      {warnings.length > 0 && (
        <div class="alert warn">
          {warnings.map((w) => (
            <div>{w}</div>
          ))}
        </div>
      )}

      <div class="editor-grid">
        <div class="editor-main">
          <div class="card">
            <div class="form-row">
              {!flow && (
                <label>
                  Name
                  <input value={f.name} onInput={(e) => update((x) => ({ ...x, name: e.currentTarget.value }))} placeholder="notify-team" pattern="[a-z0-9](?:[a-z0-9]|-)*" aria-label="Flow name" required />
                </label>
              )}
              <label class="grow">
                Description
                <input value={f.description} onInput={(e) => update((x) => ({ ...x, description: e.currentTarget.value }))} placeholder="What this flow does" />
              </label>
            </div>
          </div>

          <div class="card trigger">
            <h2>
              <span class="step-no">⚑</span> Trigger
            </h2>
            <div class="form-row">
              <label>
                Type
                <select value={f.trigger.type} onChange={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, type: e.currentTarget.value } }))} aria-label="Trigger type">
                  <option value="manual">manual</option>
                  <option value="webhook">webhook</option>
                  <option value="schedule">schedule</option>
                  <option value="event">event</option>
                </select>
              </label>
              {f.trigger.type === 'schedule' && (
                <label>
                  Cron (UTC)
                  <input class="mono" value={f.trigger.cron} onInput={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, cron: e.currentTarget.value } }))} placeholder="*/5 * * * *" />
                </label>
              )}
              {f.trigger.type === 'event' && (
                <>
                  <label>
                    Topic
                    <input class="mono" value={f.trigger.topic} onInput={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, topic: e.currentTarget.value } }))} placeholder="records:*" />
                  </label>
                  <label class="grow">
                    Filter (expr)
                    <input class="mono" value={f.trigger.filter} onInput={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, filter: e.currentTarget.value } }))} placeholder='input.kind == "created"' />
                  </label>
                </>
              )}
              {(f.trigger.type === 'webhook' || f.trigger.type === 'schedule') && (
                <label>
                  Environment
                  <select value={f.trigger.environment} onChange={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, environment: e.currentTarget.value } }))}>
                    <option value="">development (default)</option>
                    {app.environments.map((e) => (
                      <option value={e}>{e}</option>
                    ))}
                  </select>
                </label>
              )}
              {f.trigger.type === 'webhook' && (
                <>
                  <label>
                    Signing secret
                    <select value={f.trigger.signing_secret} onChange={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, signing_secret: e.currentTarget.value } }))}>
                      <option value="">none</option>
                      {secrets.map((s) => (
                        <option value={s.name}>{s.name}</option>
                      ))}
                    </select>
                  </label>
                  <label>
                    Signature
                    <select value={f.trigger.signature} onChange={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, signature: e.currentTarget.value } }))}>
                      <option value="">—</option>
                      <option value="slack">slack</option>
                      <option value="github">github</option>
                    </select>
                  </label>
                </>
              )}
            </div>
            {problems
              .filter((p) => p.field?.startsWith('trigger'))
              .map((p) => (
                <div class="field-error" role="alert">
                  {p.field}: {p.message}
                </div>
              ))}
            {f.trigger.type === 'webhook' && flow && (
              <p class="muted small">
                POST <code>/hooks/{project}/{flow}</code>
              </p>
            )}
          </div>

          <EnvEditor rows={f.env} onChange={(env) => update((x) => ({ ...x, env }))} />

          <ol class="blocks" aria-label="Blocks">
            {f.blocks.map((b, i) => {
              const spec = typeMap.get(b.type)?.spec
              const fields: Field[] = (spec?.fields ?? [])
                .filter((x) => !commonSettings.has(x.name) || x.name in b.config)
                .map((x) => (commonSettings.has(x.name) ? { ...x, doc: `${x.doc} This is the ${b.type} block's own setting; the block's timeout and retries (below) apply too.` } : x))
              for (const k of Object.keys(b.config)) if (!fields.some((x) => x.name === k)) fields.push({ name: k, type: 'any', doc: 'not a field of this block type' })
              const bp = blockProblems(b.id, [...fields.map((x) => x.name), 'if'])
              return (
                <li class="card block" key={b.uid} data-block={b.id}>
                  <header class="block-head">
                    <span class="step-no">{i + 1}</span>
                    <input
                      class="mono block-id"
                      aria-label={`Block ${i + 1} id`}
                      value={b.id}
                      onInput={(e) => setBlock(b.uid, (x) => ({ ...x, id: e.currentTarget.value }))}
                    />
                    <span class="tag type">{b.type}</span>
                    <span class="muted summary">{spec?.summary}</span>
                    <span class="block-actions">
                      <button type="button" class="icon-btn" aria-label={`Move ${b.id} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                        ↑
                      </button>
                      <button type="button" class="icon-btn" aria-label={`Move ${b.id} down`} disabled={i === f.blocks.length - 1} onClick={() => move(i, 1)}>
                        ↓
                      </button>
                      <button type="button" class="icon-btn danger" aria-label={`Remove ${b.id}`} onClick={() => update((x) => ({ ...x, blocks: x.blocks.filter((y) => y.uid !== b.uid) }))}>
                        ×
                      </button>
                    </span>
                  </header>
                  {bp.map((p) => (
                    <div class="field-error" role="alert">
                      {p.field && <span class="mono">{p.field}: </span>}
                      {p.message}
                    </div>
                  ))}
                  {fields.map((field) => (
                    <FieldRow
                      key={field.name}
                      block={b}
                      field={field}
                      value={b.config[field.name] ?? ''}
                      problems={problemsOf(b.id, field.name)}
                      scope={scopeFor(b.uid)}
                      onChange={(v) => setBlock(b.uid, (x) => ({ ...x, config: { ...x.config, [field.name]: v } }))}
                      preview={preview && preview.key === `${b.uid}/${field.name}` ? preview : null}
                      onFocusField={() => setFocus({ uid: b.uid, field: field.name })}
                      onSave={() => saveRef.current()}
                    />
                  ))}
                  <details class="block-options" open={!!(b.if || b.timeout || b.attempts || b.continueOnError) || problemsOf(b.id, 'if').length > 0}>
                    <summary>Condition, timeout, retries and errors</summary>
                    <div class="field">
                      <div class="field-label">
                        <label>
                          <span class="mono">if</span>
                        </label>
                        <span class="doc">An expr-lang condition; the block is skipped when it is false.</span>
                      </div>
                      <ExprEditor
                        label={`${b.id} if`}
                        kind="condition"
                        value={b.if}
                        onChange={(v) => setBlock(b.uid, (x) => ({ ...x, if: v }))}
                        scope={scopeFor(b.uid)}
                        problems={problemsOf(b.id, 'if').map((p) => ({ line: p.line ?? 0, column: p.column ?? 0, message: p.message }))}
                        placeholder="steps.call.output.status == 200"
                        onSave={() => saveRef.current()}
                      />
                      {problemsOf(b.id, 'if').map((p) => (
                        <div class="field-error" role="alert">
                          {p.line ? `${p.line}:${p.column} ` : ''}
                          {p.message}
                        </div>
                      ))}
                    </div>
                    <div class="form-row">
                      <label>
                        Timeout
                        <input class="mono" value={b.timeout} placeholder="30s" onInput={(e) => setBlock(b.uid, (x) => ({ ...x, timeout: e.currentTarget.value }))} />
                      </label>
                      <label>
                        Attempts
                        <input class="mono" type="number" min={1} max={10} value={b.attempts} placeholder="1" onInput={(e) => setBlock(b.uid, (x) => ({ ...x, attempts: e.currentTarget.value }))} />
                      </label>
                      <label>
                        Backoff
                        <input class="mono" value={b.backoff} placeholder="1s" onInput={(e) => setBlock(b.uid, (x) => ({ ...x, backoff: e.currentTarget.value }))} />
                      </label>
                      <label title="When the block fails for good, its output is {error, failed: true} and the run goes on">
                        <input type="checkbox" checked={b.continueOnError} onChange={(e) => setBlock(b.uid, (x) => ({ ...x, continueOnError: e.currentTarget.checked }))} />
                        Continue on error
                      </label>
                    </div>
                  </details>
                </li>
              )
            })}
          </ol>
          {f.blocks.length === 0 && <div class="empty small">No blocks yet: add the first step of this flow.</div>}
          <div class="add-block card">
            <label>
              Block type
              <select value={addType} onChange={(e) => setAddType(e.currentTarget.value)} aria-label="New block type">
                {types.map((t) => (
                  <option value={t.id}>
                    {t.id} — {t.spec.summary}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" class="btn" onClick={addBlock}>
              + Add block
            </button>
          </div>
        </div>

        <aside class="editor-side">
          <div class="card sticky">
            <h2>Run</h2>
            <p class="muted small">
              In <strong>{env}</strong> (switch in the sidebar). Saves first if needed.
            </p>
            <label>
              Input (JSON)
              <textarea class="mono" rows={6} value={input} onInput={(e) => setInput(e.currentTarget.value)} spellcheck={false} aria-label="Run input" />
            </label>
            {(() => {
              try {
                JSON.parse(input || '{}')
                return null
              } catch (e) {
                return <div class="field-error">{(e as Error).message}</div>
              }
            })()}
            <button class="btn primary wide" onClick={run} disabled={running || saving || f.blocks.length === 0}>
              {running ? 'Starting…' : '▶ Run flow'}
            </button>
            {flow && (
              <Link class="btn wide ghost" href={`/p/${enc(project)}/runs?flow=${enc(flow)}`}>
                Runs of this flow
              </Link>
            )}
            <h3>Expressions</h3>
            <ul class="help">
              <li>
                <code>secrets.NAME</code> — {secrets.length} secret{secrets.length === 1 ? '' : 's'} visible in {project}/{env}
              </li>
              <li>
                <code>steps.ID.output</code> — an earlier block's output
              </li>
              <li>
                <code>input</code>, <code>env</code>, <code>run</code>
              </li>
              <li>
                <kbd>Ctrl</kbd>+<kbd>Space</kbd> completes, <kbd>Ctrl</kbd>+<kbd>S</kbd> saves
              </li>
            </ul>
          </div>
        </aside>
      </div>
      {confirmDelete && (
        <Modal title={`Delete ${flow}?`} onClose={() => setConfirmDelete(false)}>
          <p>The flow and its versions are deleted. Past runs stay in the run list.</p>
          <div class="form-actions">
            <button class="btn" onClick={() => setConfirmDelete(false)}>
              Keep it
            </button>
            <button
              class="btn danger"
              onClick={async () => {
                try {
                  await del(`/api/v1/projects/${enc(project)}/flows/${enc(flow!)}`)
                  app.toast(`${flow} deleted`)
                  navigate(`/p/${enc(project)}/flows`)
                } catch (e) {
                  app.toast((e as Error).message, 'error')
                }
              }}
            >
              Delete flow
            </button>
          </div>
        </Modal>
      )}
    </section>
  )
}
