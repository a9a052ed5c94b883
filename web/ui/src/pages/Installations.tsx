import { useEffect, useRef, useState } from 'preact/hooks'
import { get, post, put, enc, ApiError, type Secret } from '../api'
import { useApp } from '../app'
import { ExprEditor, syntaxErrors, type CompletionScope } from '../editor'
import { Empty, ErrorBox, PageHeader, Spinner, ago } from '../ui'

interface AppField {
  name: string
  secret?: boolean
  required?: boolean
  doc: string
}
interface AppManifest {
  name: string
  title: string
  doc?: string
  base_url?: string
  config: AppField[]
  actions?: { name: string; title?: string }[] | Record<string, { title?: string }>
}
interface Installation {
  id: string
  app: string
  name: string
  config: Record<string, string>
  updated_at: string
  updated_by: string
}

// The API names the field in its message: config field "bot_token" ...
const fieldOf = (msg: string) => /config field "([^"]+)"/.exec(msg)?.[1] ?? ''

function InstallForm({ project, app: m, existing, onDone, onCancel }: { project: string; app: AppManifest; existing?: Installation; onDone: () => void; onCancel: () => void }) {
  const ctx = useApp()
  const [name, setName] = useState(existing?.name ?? m.name)
  const [config, setConfig] = useState<Record<string, string>>(existing?.config ?? {})
  const [err, setErr] = useState<ApiError | Error | null>(null)
  const [warnings, setWarnings] = useState<string[]>([])
  const [secrets, setSecrets] = useState<Secret[]>([])
  const [busy, setBusy] = useState(false)
  const latest = useRef(secrets)
  latest.current = secrets
  useEffect(() => {
    get<{ secrets: Secret[] }>(`/api/v1/secrets?project=${enc(project)}&environment=${enc(ctx.environment)}&resolved=true`)
      .then((r) => setSecrets(r.secrets ?? []))
      .catch(() => {})
  }, [project, ctx.environment])
  const scope = (): CompletionScope => ({ secrets: latest.current.map((s) => ({ name: s.name, detail: s.from ?? s.scope_label })), steps: [], input: [], env: [] })
  const fields: AppField[] = [...m.config]
  if (!fields.some((f) => f.name === 'base_url')) fields.push({ name: 'base_url', required: true, doc: 'Base URL of the API this installation calls.' })
  const errField = err instanceof ApiError ? fieldOf(err.message) : ''
  const save = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setErr(null)
    try {
      const body = { app: m.name, name: name.trim(), config: Object.fromEntries(Object.entries(config).filter(([, v]) => v.trim() !== '')) }
      const r = existing
        ? await put<{ warnings?: string[] }>(`/api/v1/projects/${enc(project)}/installations/${enc(existing.name)}`, body)
        : await post<{ warnings?: string[] }>(`/api/v1/projects/${enc(project)}/installations`, body)
      setWarnings(r?.warnings ?? [])
      ctx.toast(`Installation ${name} saved`)
      if (!r?.warnings?.length) onDone()
    } catch (e) {
      setErr(e as Error)
    } finally {
      setBusy(false)
    }
  }
  return (
    <form class="card form install-form" onSubmit={save}>
      <h2>
        {existing ? 'Edit' : 'Install'} {m.title || m.name}
      </h2>
      {m.doc && <p class="muted">{m.doc}</p>}
      <label>
        Installation name
        <input value={name} disabled={!!existing} onInput={(e) => setName(e.currentTarget.value)} pattern="[a-z0-9](?:[a-z0-9_]|-)*" required />
        <small>
          Flows call it from an <code>app</code> block.
        </small>
      </label>
      {fields.map((f) => {
        const v = config[f.name] ?? ''
        const syn = syntaxErrors(v, 'field')
        return (
          <div class={'field' + (syn.length || errField === f.name ? ' has-error' : '')} data-field={f.name}>
            <div class="field-label">
              <label>
                <span class="mono">{f.name}</span>
                {f.required && <span class="req">*</span>}
              </label>
              {f.secret && <span class="tag secret">secret</span>}
              <span class="doc">{f.doc}</span>
            </div>
            <ExprEditor
              label={f.name}
              kind="field"
              value={v}
              onChange={(x) => setConfig((c) => ({ ...c, [f.name]: x }))}
              scope={scope}
              placeholder={f.secret ? `secrets.${m.name.toUpperCase()}_${f.name.toUpperCase()}` : "'value'"}
            />
            {syn.map((s) => (
              <div class="field-error" role="alert">
                <span class="loc">
                  {s.line}:{s.column}
                </span>{' '}
                {s.message}
              </div>
            ))}
            {errField === f.name && (
              <div class="field-error" role="alert">
                {err!.message}
              </div>
            )}
          </div>
        )
      })}
      {err && !errField && <ErrorBox error={err} />}
      {warnings.length > 0 && (
        <div class="alert warn">
          {warnings.map((w) => (
            <div>{w}</div>
          ))}
        </div>
      )}
      <div class="form-actions">
        <button type="button" class="btn" onClick={warnings.length ? onDone : onCancel}>
          {warnings.length ? 'Done' : 'Cancel'}
        </button>
        <button class="btn primary" disabled={busy}>
          {busy ? 'Saving…' : 'Save installation'}
        </button>
      </div>
    </form>
  )
}

export function Installations({ project }: { project: string }) {
  const [apps, setApps] = useState<AppManifest[] | null>(null)
  const [list, setList] = useState<Installation[] | null>(null)
  const [err, setErr] = useState<unknown>(null)
  const [editing, setEditing] = useState<{ app: AppManifest; existing?: Installation } | null>(null)
  const load = () => {
    setErr(null)
    Promise.all([get<any>('/api/v1/apps'), get<{ installations: Installation[] }>(`/api/v1/projects/${enc(project)}/installations`)])
      .then(([a, i]) => {
        setApps(Array.isArray(a) ? a : a.apps ?? [])
        setList(i.installations ?? [])
      })
      .catch(setErr)
  }
  useEffect(() => {
    setList(null)
    setEditing(null)
    load()
  }, [project])
  const byName = new Map((apps ?? []).map((a) => [a.name, a]))
  return (
    <section>
      <PageHeader title="App installations" sub="An installation connects an app (Slack, an API) to this project; its config fields are expressions such as secrets.SLACK_BOT_TOKEN, resolved only when a run needs them." />
      {err ? (
        <ErrorBox error={err} retry={load} />
      ) : !apps || !list ? (
        <Spinner />
      ) : editing ? (
        <InstallForm
          project={project}
          app={editing.app}
          existing={editing.existing}
          onCancel={() => setEditing(null)}
          onDone={() => {
            setEditing(null)
            load()
          }}
        />
      ) : (
        <>
          {list.length === 0 ? (
            <Empty title="Nothing installed yet">Pick an app below to install it in {project}.</Empty>
          ) : (
            <div class="table-wrap">
              <table class="table">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>App</th>
                    <th>Config</th>
                    <th>Updated</th>
                    <th class="right">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((i) => (
                    <tr key={i.id}>
                      <td class="mono strong">{i.name}</td>
                      <td>
                        <span class="tag">{i.app}</span>
                      </td>
                      <td class="mono small">
                        {Object.entries(i.config ?? {}).map(([k, v]) => (
                          <div>
                            {k}: {v}
                          </div>
                        ))}
                      </td>
                      <td>{ago(i.updated_at)}</td>
                      <td class="right">
                        {byName.get(i.app) && (
                          <button class="btn small" onClick={() => setEditing({ app: byName.get(i.app)!, existing: i })}>
                            Edit
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h2 class="section-title">Apps</h2>
          <div class="app-grid">
            {apps.map((a) => (
              <button class="card app-card" onClick={() => setEditing({ app: a })}>
                <strong>{a.title || a.name}</strong>
                <span class="muted small">{a.doc}</span>
                <span class="small">{Object.keys(a.actions ?? {}).length} actions · install →</span>
              </button>
            ))}
          </div>
        </>
      )}
    </section>
  )
}
