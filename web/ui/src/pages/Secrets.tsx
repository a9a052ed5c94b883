import { useEffect, useState } from 'preact/hooks'
import { get, post, put, del, enc, qs, type Secret } from '../api'
import { useApp } from '../app'
import { Link } from '../router'
import { Empty, ErrorBox, Modal, PageHeader, Spinner, ago } from '../ui'

type ScopeKey = 'resolved' | 'project' | 'project_env' | 'env' | 'org'

function scopeParams(k: ScopeKey, project: string, env: string) {
  switch (k) {
    case 'resolved':
      return { project, environment: env, resolved: true }
    case 'project':
      return { project }
    case 'project_env':
      return { project, environment: env }
    case 'env':
      return { environment: env }
    default:
      return {}
  }
}

function readFile(f: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader()
    r.onload = () => {
      const s = String(r.result)
      resolve(s.slice(s.indexOf(',') + 1)) // data:...;base64,<payload>
    }
    r.onerror = () => reject(r.error)
    r.readAsDataURL(f)
  })
}

const MaxFile = 1 << 20

/** ValueInput is a write-only value: a masked text field or a file. It never shows a stored value. */
function ValueInput({ onValue }: { onValue: (v: { value?: string; file_base64?: string } | null) => void }) {
  const [mode, setMode] = useState<'text' | 'file'>('text')
  const [reveal, setReveal] = useState(false)
  const [fileErr, setFileErr] = useState('')
  return (
    <fieldset class="value-input">
      <legend>Value</legend>
      <div class="segmented" role="radiogroup" aria-label="Value type">
        <label class={mode === 'text' ? 'on' : ''}>
          <input type="radio" name="mode" checked={mode === 'text'} onChange={() => (setMode('text'), onValue(null))} /> Text
        </label>
        <label class={mode === 'file' ? 'on' : ''}>
          <input type="radio" name="mode" checked={mode === 'file'} onChange={() => (setMode('file'), onValue(null))} /> File
        </label>
      </div>
      {mode === 'text' ? (
        <div class="with-button">
          <input
            {...({ type: reveal ? 'text' : 'password' } as { type: 'password' })}
            name="secret-value"
            aria-label="Secret value"
            autocomplete="new-password"
            spellcheck={false}
            onInput={(e) => onValue(e.currentTarget.value === '' ? null : { value: e.currentTarget.value })}
            required
          />
          <button type="button" class="btn small ghost" aria-pressed={reveal} onClick={() => setReveal(!reveal)}>
            {reveal ? 'Hide' : 'Show'}
          </button>
        </div>
      ) : (
        <>
          <input
            type="file"
            aria-label="Secret file"
            onChange={async (e) => {
              const f = e.currentTarget.files?.[0]
              setFileErr('')
              if (!f) return onValue(null)
              if (f.size > MaxFile) {
                setFileErr('Files are limited to 1 MiB.')
                return onValue(null)
              }
              onValue({ file_base64: await readFile(f) })
            }}
            required
          />
          {fileErr && <small class="field-error">{fileErr}</small>}
        </>
      )}
      <small>Write-only: once saved, no page, API response or log shows it again.</small>
    </fieldset>
  )
}

function AddSecret({ project, env, scope, onDone, onClose }: { project: string; env: string; scope: ScopeKey; onDone: () => void; onClose: () => void }) {
  const app = useApp()
  const [name, setName] = useState('')
  const [where, setWhere] = useState<ScopeKey>(scope === 'resolved' ? 'project' : scope)
  const [val, setVal] = useState<{ value?: string; file_base64?: string } | null>(null)
  const [description, setDescription] = useState('')
  const [hosts, setHosts] = useState('')
  const [err, setErr] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  return (
    <Modal title="Add secret" onClose={onClose}>
      <form
        class="form"
        autocomplete="off"
        onSubmit={async (e) => {
          e.preventDefault()
          if (!val) return
          setBusy(true)
          setErr(null)
          try {
            const body: any = { name: name.trim(), ...val, ...scopeParams(where, project, env), description: description || undefined }
            delete body.resolved
            const h = hosts.split(/[\s,]+/).filter(Boolean)
            if (h.length) body.allowed_hosts = h
            const r = await post<Secret & { warnings?: string[] }>('/api/v1/secrets', body)
            setVal(null)
            app.toast(`Secret ${r.name} saved (version ${r.version})`)
            for (const w of r.warnings ?? []) app.toast(w, 'error')
            onDone()
            onClose()
          } catch (e) {
            setErr(e)
          } finally {
            setBusy(false)
          }
        }}
      >
        <label>
          Name
          <input value={name} onInput={(e) => setName(e.currentTarget.value.toUpperCase())} placeholder="STRIPE_API_KEY" pattern="[A-Za-z_][A-Za-z0-9_]*" required />
          <small>
            Use it as <code>secrets.{name || 'NAME'}</code>.
          </small>
        </label>
        <label>
          Scope
          <select value={where} onChange={(e) => setWhere(e.currentTarget.value as ScopeKey)}>
            <option value="project">Project {project} (every environment)</option>
            <option value="project_env">
              Project {project} in {env}
            </option>
            {app.user?.admin && <option value="env">Environment {env} (every project)</option>}
            {app.user?.admin && <option value="org">Organization (everywhere)</option>}
          </select>
        </label>
        <ValueInput onValue={setVal} />
        <label>
          Description <span class="muted">(optional)</span>
          <input value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </label>
        <label>
          Allowed hosts <span class="muted">(optional)</span>
          <input value={hosts} onInput={(e) => setHosts(e.currentTarget.value)} placeholder="api.stripe.com" />
          <small>HTTP blocks may send this secret only to these hosts.</small>
        </label>
        <ErrorBox error={err} />
        <div class="form-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button class="btn primary" disabled={busy || !val || !name}>
            {busy ? 'Saving…' : 'Save secret'}
          </button>
        </div>
      </form>
    </Modal>
  )
}

function UpdateSecret({ s, onDone, onClose }: { s: Secret; onDone: () => void; onClose: () => void }) {
  const app = useApp()
  const [val, setVal] = useState<{ value?: string; file_base64?: string } | null>(null)
  const [err, setErr] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  return (
    <Modal title={`New value for ${s.name}`} onClose={onClose}>
      <form
        class="form"
        autocomplete="off"
        onSubmit={async (e) => {
          e.preventDefault()
          if (!val) return
          setBusy(true)
          try {
            const r = await put<Secret & { warnings?: string[] }>(`/api/v1/secrets/${enc(s.id)}`, val)
            setVal(null)
            app.toast(`${r.name} is now version ${r.version}`)
            for (const w of r.warnings ?? []) app.toast(w, 'error')
            onDone()
            onClose()
          } catch (e) {
            setErr(e)
          } finally {
            setBusy(false)
          }
        }}
      >
        <p class="muted">
          Scope {s.scope_label}, now version {s.version}. Saving makes version {s.version + 1}; runs use it from their next read.
        </p>
        <ValueInput onValue={setVal} />
        <ErrorBox error={err} />
        <div class="form-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button class="btn primary" disabled={busy || !val}>
            Save new version
          </button>
        </div>
      </form>
    </Modal>
  )
}

// Exposure is the mark of a secret a run found where it should never be
// (docs/secrets.md, Exposure alerts); the next update clears it.
type Exposure = { at: string; run_id: string; run_project: string; block?: string; sink: string }

const sinkText: Record<string, string> = {
  http_response: 'the response of an outside service',
  output: 'a block output',
  exec_output: 'a command output',
  run_input: 'a run input',
  webhook_payload: 'a webhook payload',
}

/** Exposed is the "possibly exposed — rotate" badge of a secret, with the time and place. */
function Exposed({ x, onRotate }: { x: Exposure; onRotate?: () => void }) {
  const where = x.block ? `block ${x.block} (${sinkText[x.sink] ?? x.sink})` : sinkText[x.sink] ?? x.sink
  return (
    <div role="alert">
      <span class="warn" title="A run found this secret's value where it should never be: it may have been seen outside Hushflow">
        possibly exposed — rotate
      </span>
      <div class="muted small">
        <span title={x.at}>{ago(x.at)}</span> in {where} of run{' '}
        <Link href={`/p/${enc(x.run_project)}/runs/${enc(x.run_id)}`} class="mono" title={x.run_id}>
          {'…' + x.run_id.slice(-8)}
        </Link>
        {onRotate && (
          <>
            {' · '}
            <button type="button" class="btn small ghost" onClick={onRotate}>
              rotate: store a new value
            </button>
          </>
        )}
      </div>
    </div>
  )
}

// Usage is where a project's saved flows and installations name secrets
// (GET /projects/{p}/secret-usage, computed by the server).
type Usage = {
  secrets: Record<string, { flows: string[]; installations: string[] }>
  unknown_flows: string[]
}

function usedBy(u: Usage | null, name: string): string {
  const e = u?.secrets[name]
  if (!e) return ''
  const parts = []
  if (e.flows.length) parts.push(`${e.flows.length === 1 ? 'flow' : 'flows'} ${e.flows.join(', ')}`)
  if (e.installations.length) parts.push(`${e.installations.length === 1 ? 'installation' : 'installations'} ${e.installations.join(', ')}`)
  return parts.join('; ')
}

function DeleteSecret({ s, usage, onDone, onClose }: { s: Secret; usage: Usage | null; onDone: () => void; onClose: () => void }) {
  const app = useApp()
  const [err, setErr] = useState<unknown>(null)
  const users = usedBy(usage, s.name)
  return (
    <Modal title={`Delete ${s.name}?`} onClose={onClose}>
      {users && (
        <p class="warn" role="alert">
          {s.name} is used by {users}: their runs will fail once it is deleted.
        </p>
      )}
      <p>
        The secret <strong class="mono">{s.name}</strong> ({s.scope_label}) and every version of its value are deleted. Runs that read it will fail with an unknown
        secret error.
      </p>
      <ErrorBox error={err} />
      <div class="form-actions">
        <button type="button" class="btn" onClick={onClose}>
          Keep it
        </button>
        <button
          type="button"
          class="btn danger"
          onClick={async () => {
            try {
              await del(`/api/v1/secrets/${enc(s.id)}`)
              app.toast(`${s.name} deleted`)
              onDone()
              onClose()
            } catch (e) {
              setErr(e)
            }
          }}
        >
          Delete secret
        </button>
      </div>
    </Modal>
  )
}

function exposureOf(s: Secret): Exposure | null {
  return (s as Secret & { exposure?: Exposure | null }).exposure ?? null
}

export function Secrets({ project }: { project: string }) {
  const app = useApp()
  const env = app.environment
  const [scope, setScope] = useState<ScopeKey>('project')
  const [list, setList] = useState<Secret[] | null>(null)
  const [err, setErr] = useState<unknown>(null)
  const [usage, setUsage] = useState<Usage | null>(null)
  const [dialog, setDialog] = useState<null | { kind: 'add' } | { kind: 'update' | 'delete'; s: Secret }>(null)

  const load = () => {
    setErr(null)
    get<{ secrets: Secret[] }>('/api/v1/secrets' + qs(scopeParams(scope, project, env)))
      .then((r) => setList(r.secrets ?? []))
      .catch(setErr)
  }
  useEffect(() => {
    setList(null)
    load()
  }, [project, env, scope])

  // Where the project's flows and installations name each secret, as the
  // server computes it from what is saved (one request).
  useEffect(() => {
    let stop = false
    setUsage(null)
    get<Usage>(`/api/v1/projects/${enc(project)}/secret-usage`)
      .then((u) => !stop && setUsage(u))
      .catch(() => {})
    return () => {
      stop = true
    }
  }, [project])

  const scopeLabel: Record<ScopeKey, string> = {
    resolved: `What a run of ${project} in ${env} sees`,
    project: `Project ${project}`,
    project_env: `Project ${project} in ${env}`,
    env: `Environment ${env}`,
    org: 'Organization',
  }
  return (
    <section>
      <PageHeader title="Secrets" sub="Names and metadata only: values are write-only and never sent to the browser.">
        <Link class="btn" href={`/p/${enc(project)}/doctor`}>
          Redaction self-test
        </Link>
        <button class="btn primary" onClick={() => setDialog({ kind: 'add' })}>
          Add secret
        </button>
      </PageHeader>
      <div class="filters">
        <label>
          Scope
          <select aria-label="Scope" value={scope} onChange={(e) => setScope(e.currentTarget.value as ScopeKey)}>
            {(Object.keys(scopeLabel) as ScopeKey[]).map((k) => (
              <option value={k}>{scopeLabel[k]}</option>
            ))}
          </select>
        </label>
      </div>
      {err ? (
        <ErrorBox error={err} retry={load} />
      ) : !list ? (
        <Spinner />
      ) : list.length === 0 ? (
        <Empty
          title="No secrets in this scope"
          action={
            <button class="btn primary" onClick={() => setDialog({ kind: 'add' })}>
              Add a secret
            </button>
          }
        >
          Store API keys and tokens once; reference them in flows as <code>secrets.NAME</code>.
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label="Secrets">
            <thead>
              <tr>
                <th>Name</th>
                <th>Scope</th>
                <th>Version</th>
                <th>Updated</th>
                <th>Warnings</th>
                <th class="right">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((s) => {
                const own = scope !== 'resolved' || s.from === undefined || s.scope_label === s.from
                return (
                  <tr key={s.id}>
                    <td>
                      <span class="mono strong">{s.name}</span>
                      {s.kind === 'file' && <span class="tag">file</span>}
                      {s.description && <div class="muted small">{s.description}</div>}
                      {usedBy(usage, s.name) && <div class="muted small">used by {usedBy(usage, s.name)}</div>}
                    </td>
                    <td>
                      <span class="tag">{s.from ?? s.scope_label}</span>
                    </td>
                    <td class="mono">v{s.version}</td>
                    <td title={s.updated_at}>
                      {ago(s.updated_at)} <span class="muted">by {s.updated_by}</span>
                    </td>
                    <td>
                      {exposureOf(s) && <Exposed x={exposureOf(s)!} onRotate={own ? () => setDialog({ kind: 'update', s }) : undefined} />}
                      {s.weak && (
                        <span class="warn" title="Short or low-entropy values cannot be masked reliably in run output">
                          weakly protected: short value
                        </span>
                      )}
                      {usage && !usage.secrets[s.name] && usage.unknown_flows.length === 0 && <span class="warn soft">unused</span>}
                      {usage && !usage.secrets[s.name] && usage.unknown_flows.length > 0 && (
                        <span class="warn soft" title={`Not named by any flow or installation; ${usage.unknown_flows.join(', ')} compute secret names at run time`}>
                          not named
                        </span>
                      )}
                    </td>
                    <td class="right nowrap">
                      {own && (
                        <>
                          <button class="btn small" onClick={() => setDialog({ kind: 'update', s })}>
                            Update
                          </button>{' '}
                          <button class="btn small danger ghost" onClick={() => setDialog({ kind: 'delete', s })} aria-label={`Delete ${s.name}`}>
                            Delete
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      )}
      {dialog?.kind === 'add' && <AddSecret project={project} env={env} scope={scope} onDone={load} onClose={() => setDialog(null)} />}
      {dialog?.kind === 'update' && <UpdateSecret s={dialog.s} onDone={load} onClose={() => setDialog(null)} />}
      {dialog?.kind === 'delete' && <DeleteSecret s={dialog.s} usage={usage} onDone={load} onClose={() => setDialog(null)} />}
    </section>
  )
}
