import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { get, post, put, del, enc, ApiError, type BlockType, type Definition, type Flow, type Problem, type Run, type Secret } from '../api'
import { useApp } from '../app'
import { Link, navigate } from '../router'
import { syntaxErrors, type CompletionScope } from '../editor'
import { ancestors, TRIGGER } from '../graph'
import { ErrorBox, JSONView, Modal, PageHeader, Spinner, ago } from '../ui'
import { BlockForm, blockDef, editBlock, newBlock, type EditBlock, type Preview } from './BlockForm'
import { FlowGraph, useLastRun } from './FlowGraph'
import { EnvEditor, envObject, envRows, type EnvRow } from './EnvEditor'

interface EditFlow {
  name: string
  description: string
  trigger: { type: string; cron: string; environment: string; topic: string; filter: string; signing_secret: string; signature: string }
  blocks: EditBlock[]
  env: EnvRow[]
  /** Parts of the definition the editor does not edit yet, kept as they are on save (the graph shows on_error). */
  kept: Pick<Definition, 'on_error' | 'max_concurrent_runs' | 'output'>
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
    blocks: (d.blocks ?? []).map(editBlock),
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
    blocks: f.blocks.map(blockDef),
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
  // The graph is the view of a flow that has blocks; a new or empty flow opens in the form.
  const [view, setView] = useState<'graph' | 'form'>('form')
  // What the graph has selected: a block by its uid (it keeps it through a rename), or TRIGGER or an on_error block's id.
  const [sel, setSel] = useState<number | string>(TRIGGER)
  const last = useLastRun(project, flow, meta?.version)
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
          const ef = fromDefinition(r.definition)
          setF(ef)
          // A flow with blocks opens in the graph, its first block's form beside it.
          if (ef.blocks.length) {
            setView('graph')
            setSel(ef.blocks[0].uid)
          }
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
      // The blocks it runs after, directly or not: those whose steps.X it may read.
      steps: (() => {
        const up = i < 0 ? new Set<string>() : ancestors(blocks.map((b) => ({ id: b.id, needs: blockDef(b).needs, sources: [] })), blocks[i].id)
        return blocks.filter((b) => up.has(b.id)).map((b) => ({ id: b.id, type: b.type }))
      })(),
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
    const b = newBlock(id, addType)
    update((x) => ({ ...x, blocks: [...x.blocks, b] }))
    setSel(b.uid)
  }
  const move = (i: number, d: number) =>
    update((x) => {
      const bs = [...x.blocks]
      const j = i + d
      if (j < 0 || j >= bs.length) return x
      ;[bs[i], bs[j]] = [bs[j], bs[i]]
      return { ...x, blocks: bs }
    })
  // A renamed block keeps its place in the other blocks' needs and in the flow's output.
  const rename = (uid: number, id: string) =>
    update((x) => {
      const old = x.blocks.find((b) => b.uid === uid)?.id
      if (old === undefined) return x
      return {
        ...x,
        blocks: x.blocks.map((b) => (b.uid === uid ? { ...b, id } : b.needs.includes(old) ? { ...b, needs: b.needs.map((n) => (n === old ? id : n)) } : b)),
        kept: x.kept.output === old ? { ...x.kept, output: id } : x.kept,
      }
    })
  const remove = (uid: number) =>
    update((x) => {
      const old = x.blocks.find((b) => b.uid === uid)?.id
      return { ...x, blocks: x.blocks.filter((b) => b.uid !== uid).map((b) => (b.needs.includes(old ?? '') ? { ...b, needs: b.needs.filter((n) => n !== old) } : b)) }
    })
  const flowProblems = problems.filter((p) => !p.block || !f.blocks.some((b) => b.id === p.block))
  const totalSyntax = f.blocks.reduce(
    (n, b) => n + Object.entries(b.config).filter(([k, v]) => syntaxErrors(v, typeMap.get(b.type)?.spec.fields.find((x) => x.name === k)?.raw ? 'code' : 'field').length > 0).length,
    0,
  )
  const form = (b: EditBlock, i: number, as: 'li' | 'div') => (
    <BlockForm
      key={b.uid}
      as={as}
      block={b}
      index={i}
      count={f.blocks.length}
      type={typeMap.get(b.type)}
      others={f.blocks.filter((o) => o.uid !== b.uid).map((o) => o.id)}
      problems={problems.filter((p) => p.block === b.id)}
      scope={scopeFor(b.uid)}
      preview={preview}
      onChange={(g) => setBlock(b.uid, g)}
      onRename={(id) => rename(b.uid, id)}
      onMove={(d) => move(i, d)}
      onRemove={() => remove(b.uid)}
      onFocusField={(field) => setFocus({ uid: b.uid, field })}
      onSave={() => saveRef.current()}
    />
  )

  const nameCard = (
    <div class="card">
      <div class="form-row">
        {!flow && (
          <label>
            Name
            <input value={f.name} onInput={(e) => update((x) => ({ ...x, name: e.currentTarget.value }))} placeholder="e.g. notify-team" pattern="[a-z0-9](?:[a-z0-9]|-)*" aria-label="Flow name" required />
          </label>
        )}
        <label class="grow">
          Description
          <input value={f.description} onInput={(e) => update((x) => ({ ...x, description: e.currentTarget.value }))} placeholder="e.g. Tell the team when an order ships" />
        </label>
      </div>
    </div>
  )
  const triggerCard = (
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
            <input class="mono" value={f.trigger.cron} onInput={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, cron: e.currentTarget.value } }))} placeholder="e.g. */5 * * * *" />
          </label>
        )}
        {f.trigger.type === 'event' && (
          <>
            <label>
              Topic
              <input class="mono" value={f.trigger.topic} onInput={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, topic: e.currentTarget.value } }))} placeholder="e.g. records:*" />
            </label>
            <label class="grow">
              Filter (expr)
              <input class="mono" value={f.trigger.filter} onInput={(e) => update((x) => ({ ...x, trigger: { ...x.trigger, filter: e.currentTarget.value } }))} placeholder='e.g. input.kind == "created"' />
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
  )
  const envCard = <EnvEditor rows={f.env} onChange={(env) => update((x) => ({ ...x, env }))} />
  const addBlockCard = (
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
  )
  const runCard = (
    <div class={'card run-card' + (view === 'form' ? ' sticky' : '')}>
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
  )
  const selBlock = f.blocks.findIndex((b) => b.uid === sel)
  const selected = selBlock >= 0 ? f.blocks[selBlock].id : typeof sel === 'string' ? sel : ''
  const selHandler = (f.kept.on_error ?? []).find((b) => b.id === sel)
  const select = (id: string) => setSel(f.blocks.find((b) => b.id === id)?.uid ?? id)

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
      {meta?.paused_at && (
        <div class="alert warn paused-banner" role="status">
          Paused by {meta.paused_by} {ago(meta.paused_at)}: this flow starts no run, by any trigger, until it is resumed.{' '}
          <button
            class="btn small"
            onClick={() =>
              post<Flow>(`/api/v1/projects/${enc(project)}/flows/${enc(meta.name)}/resume`)
                .then((f) => setMeta({ ...meta, paused_at: f.paused_at, paused_by: f.paused_by }))
                .catch(setSaveErr)
            }
          >
            Resume
          </button>
        </div>
      )}
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

      <div class="view-toggle segmented" role="group" aria-label="View">
        <button type="button" class={view === 'graph' ? 'on' : ''} aria-pressed={view === 'graph'} onClick={() => setView('graph')}>
          Graph
        </button>
        <button type="button" class={view === 'form' ? 'on' : ''} aria-pressed={view === 'form'} onClick={() => setView('form')}>
          Form
        </button>
      </div>

      {view === 'form' ? (
        <div class="editor-grid">
          <div class="editor-main">
            {nameCard}
            {triggerCard}
            {envCard}
            <ol class="blocks" aria-label="Blocks">
              {f.blocks.map((b, i) => form(b, i, 'li'))}
            </ol>
            {f.blocks.length === 0 && <div class="empty small">No blocks yet: add the first step of this flow.</div>}
            {addBlockCard}
          </div>
          <aside class="editor-side">{runCard}</aside>
        </div>
      ) : (
        <div class="graph-split">
          <div class="graph-col">
            <div class="card graph-card">
              <FlowGraph
                project={project}
                trigger={toDefinition(f).trigger}
                blocks={f.blocks.map(blockDef)}
                onError={f.kept.on_error ?? []}
                selected={selected}
                onSelect={select}
                last={last}
              />
            </div>
          </div>
          <div class="graph-tools">
            {addBlockCard}
            {runCard}
          </div>
          <div class="graph-form" data-selected={selected}>
            {selected === TRIGGER ? (
              <div class="editor-main">
                {nameCard}
                {triggerCard}
                {envCard}
              </div>
            ) : selBlock >= 0 ? (
              form(f.blocks[selBlock], selBlock, 'div')
            ) : selHandler ? (
              <div class="card block handler" data-block={selHandler.id}>
                <header class="block-head">
                  <span class="step-no">!</span>
                  <span class="mono strong">{selHandler.id}</span>
                  <span class="tag type">{selHandler.type}</span>
                </header>
                <p class="muted small">
                  An <span class="mono">on_error</span> block: it runs, in order with the others of the lane, when a block fails the run. The editor shows the handler and keeps it on save; edit it with <span class="mono">hushflow flow apply -f</span> or the API.
                </p>
                <JSONView value={selHandler} />
              </div>
            ) : (
              <div class="empty small">Select the trigger or a block in the graph to edit it.</div>
            )}
          </div>
        </div>
      )}
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
