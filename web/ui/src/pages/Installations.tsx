import { useEffect, useRef, useState } from 'preact/hooks'
import { get, post, put, del, enc, ApiError, type Secret } from '../api'
import { useApp } from '../app'
import { ExprEditor, syntaxErrors, type CompletionScope } from '../editor'
import { Link } from '../router'
import { Empty, ErrorBox, Modal, PageHeader, Spinner, ago } from '../ui'

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

/** Usage is which flows name each installation (GET .../installation-usage). */
interface Usage {
  installations: Record<string, string[]>
  unknown_flows: string[]
}

function DeleteInstallation({ project, inst, usage, onDone, onClose }: { project: string; inst: Installation; usage: Usage | null; onDone: () => void; onClose: () => void }) {
  const ctx = useApp()
  const [err, setErr] = useState<unknown>(null)
  const users = usage?.installations[inst.name] ?? []
  const maybe = usage?.unknown_flows ?? []
  return (
    <Modal title={`Delete ${inst.name}?`} onClose={onClose}>
      {users.length > 0 && (
        <p class="warn" role="alert">
          {inst.name} is used by {users.length === 1 ? 'flow' : 'flows'} {users.join(', ')}: their app blocks will fail once it is deleted.
        </p>
      )}
      {maybe.length > 0 && (
        <p class="muted small">
          {maybe.join(', ')} pick{maybe.length === 1 ? 's' : ''} an installation at run time and may use it too.
        </p>
      )}
      <p>
        The installation <strong class="mono">{inst.name}</strong> ({inst.app}) and its config are deleted. The secrets it names are not.
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
              await del(`/api/v1/projects/${enc(project)}/installations/${enc(inst.name)}`)
              ctx.toast(`${inst.name} deleted`)
              onDone()
              onClose()
            } catch (e) {
              setErr(e)
            }
          }}
        >
          Delete installation
        </button>
      </div>
    </Modal>
  )
}

export function Installations({ project }: { project: string }) {
  const [apps, setApps] = useState<AppManifest[] | null>(null)
  const [list, setList] = useState<Installation[] | null>(null)
  const [usage, setUsage] = useState<Usage | null>(null)
  const [err, setErr] = useState<unknown>(null)
  const [editing, setEditing] = useState<{ app: AppManifest; existing?: Installation } | null>(null)
  const [deleting, setDeleting] = useState<Installation | null>(null)
  const load = () => {
    setErr(null)
    Promise.all([get<any>('/api/v1/apps'), get<{ installations: Installation[] }>(`/api/v1/projects/${enc(project)}/installations`)])
      .then(([a, i]) => {
        setApps(Array.isArray(a) ? a : a.apps ?? [])
        setList(i.installations ?? [])
      })
      .catch(setErr)
    get<Usage>(`/api/v1/projects/${enc(project)}/installation-usage`)
      .then(setUsage)
      .catch(() => setUsage(null))
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
                    <th>Used by</th>
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
                      <td class="small used-by">
                        {usage ? (
                          (usage.installations[i.name] ?? []).length ? (
                            (usage.installations[i.name] ?? []).map((f) => (
                              <Link class="tag" href={`/p/${enc(project)}/flows/${enc(f)}`}>
                                {f}
                              </Link>
                            ))
                          ) : (
                            <span class="muted" title={usage.unknown_flows.length ? `${usage.unknown_flows.join(', ')} pick an installation at run time` : ''}>
                              {usage.unknown_flows.length ? 'no flow by name' : 'unused'}
                            </span>
                          )
                        ) : (
                          '—'
                        )}
                      </td>
                      <td>{ago(i.updated_at)}</td>
                      <td class="right nowrap">
                        {byName.get(i.app) && (
                          <button class="btn small" onClick={() => setEditing({ app: byName.get(i.app)!, existing: i })}>
                            Edit
                          </button>
                        )}{' '}
                        <button class="btn small danger ghost" onClick={() => setDeleting(i)} aria-label={`Delete ${i.name}`}>
                          Delete
                        </button>
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
      {deleting && <DeleteInstallation project={project} inst={deleting} usage={usage} onDone={load} onClose={() => setDeleting(null)} />}
    </section>
  )
}
