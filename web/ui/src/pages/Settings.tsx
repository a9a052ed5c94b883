import { useEffect, useState } from 'preact/hooks'
import { get, post, put, del, enc, qs, type AuditRecord, type Member, type Token, type UserInfo } from '../api'
import { useApp } from '../app'
import { Link } from '../router'
import { Empty, ErrorBox, Modal, PageHeader, Spinner, ago, fullTime } from '../ui'

const tabs = [
  { key: 'tokens', label: 'API tokens' },
  { key: 'members', label: 'Members' },
  { key: 'users', label: 'Users', admin: true },
  { key: 'audit', label: 'Secret audit' },
]

/** Settings: your API tokens, the project's members, users (organization admins) and the audit of secret reads. */
export function Settings({ project, tab }: { project: string; tab: string }) {
  const app = useApp()
  const visible = tabs.filter((t) => !t.admin || app.user?.admin)
  return (
    <section class="settings">
      <PageHeader title="Settings" sub={`Your tokens, the members of ${project}, users and who read which secret.`} />
      <nav class="tabs" aria-label="Settings">
        {visible.map((t) => (
          <Link href={`/p/${enc(project)}/settings/${t.key}`} class={'tab' + (tab === t.key ? ' active' : '')} aria-current={tab === t.key ? 'page' : undefined}>
            {t.label}
          </Link>
        ))}
      </nav>
      {tab === 'tokens' ? (
        <Tokens />
      ) : tab === 'members' ? (
        <Members project={project} />
      ) : tab === 'users' && app.user?.admin ? (
        <Users />
      ) : tab === 'audit' ? (
        <Audit project={project} />
      ) : (
        <Empty title="Nothing here" action={<Link href={`/p/${enc(project)}/settings/tokens`}>Your API tokens</Link>} />
      )}
    </section>
  )
}

function tokenStatus(t: Token) {
  if (t.revoked_at) return 'revoked'
  if (t.expires_at && new Date(t.expires_at).getTime() < Date.now()) return 'expired'
  return 'active'
}

function Tokens() {
  const app = useApp()
  const [list, setList] = useState<Token[] | null>(null)
  const [err, setErr] = useState<unknown>(null)
  const [name, setName] = useState('')
  const [expires, setExpires] = useState('720h')
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null)
  const [createErr, setCreateErr] = useState<unknown>(null)
  const [revoking, setRevoking] = useState<Token | null>(null)
  const load = () => {
    setErr(null)
    get<{ tokens: Token[] }>('/api/v1/tokens')
      .then((r) => setList(r.tokens ?? []))
      .catch(setErr)
  }
  useEffect(load, [])
  return (
    <div class="settings-body">
      <form
        class="card form inline-form"
        onSubmit={async (e) => {
          e.preventDefault()
          setCreateErr(null)
          try {
            const r = await post<{ token: string; name: string }>('/api/v1/tokens', { name: name.trim(), expires_in: expires || undefined })
            setCreated({ name: r.name, token: r.token })
            setName('')
            load()
          } catch (e) {
            setCreateErr(e)
          }
        }}
      >
        <h2>New token</h2>
        <div class="form-row">
          <label class="grow">
            Name
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="ci" required aria-label="Token name" />
          </label>
          <label>
            Expires
            <select value={expires} onChange={(e) => setExpires(e.currentTarget.value)} aria-label="Token expiry">
              <option value="24h">in a day</option>
              <option value="720h">in 30 days</option>
              <option value="8760h">in a year</option>
              <option value="">never</option>
            </select>
          </label>
          <button class="btn primary">Create token</button>
        </div>
        <ErrorBox error={createErr} title="Not created" />
      </form>
      {created && (
        <div class="alert info token-once" role="status">
          <strong>Token {created.name} created.</strong>
          <span>Copy it now: it is shown only this once and cannot be read again.</span>
          <code class="mono token-value">{created.token}</code>
          <div class="token-actions">
            <button type="button" class="btn small" onClick={() => navigator.clipboard?.writeText(created.token).then(() => app.toast('Copied'))}>
              Copy
            </button>
            <button type="button" class="btn small ghost" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </div>
      )}
      {err ? (
        <ErrorBox error={err} retry={load} />
      ) : !list ? (
        <Spinner />
      ) : list.length === 0 ? (
        <Empty title="No tokens">Create one for the CLI or a script.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label="Your API tokens">
            <thead>
              <tr>
                <th>Name</th>
                <th>Created</th>
                <th>Last used</th>
                <th>Expires</th>
                <th>Status</th>
                <th class="right">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((t) => (
                <tr key={t.id}>
                  <td class="strong">{t.name}</td>
                  <td title={fullTime(t.created_at)}>{ago(t.created_at)}</td>
                  <td title={fullTime(t.last_used_at)}>{t.last_used_at ? ago(t.last_used_at) : '—'}</td>
                  <td>{t.expires_at ? fullTime(t.expires_at) : 'never'}</td>
                  <td>
                    <span class={'pill pill-' + (tokenStatus(t) === 'active' ? 'succeeded' : 'canceled')}>{tokenStatus(t)}</span>
                  </td>
                  <td class="right">
                    {tokenStatus(t) === 'active' && (
                      <button class="btn small danger ghost" onClick={() => setRevoking(t)} aria-label={`Revoke ${t.name}`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {revoking && (
        <Confirm
          title={`Revoke ${revoking.name}?`}
          action="Revoke token"
          onClose={() => setRevoking(null)}
          run={async () => {
            await del(`/api/v1/tokens/${enc(revoking.id)}`)
            app.toast(`${revoking.name} revoked`)
            load()
          }}
        >
          Requests with this token are refused from now on, and browser sessions signed in with it end. This cannot be undone.
        </Confirm>
      )}
    </div>
  )
}

function Confirm(props: { title: string; action: string; children: any; onClose: () => void; run: () => Promise<void> }) {
  const [err, setErr] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  return (
    <Modal title={props.title} onClose={props.onClose}>
      <p>{props.children}</p>
      <ErrorBox error={err} />
      <div class="form-actions">
        <button type="button" class="btn" onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          class="btn danger"
          disabled={busy}
          onClick={async () => {
            setBusy(true)
            try {
              await props.run()
              props.onClose()
            } catch (e) {
              setErr(e)
            } finally {
              setBusy(false)
            }
          }}
        >
          {props.action}
        </button>
      </div>
    </Modal>
  )
}

const roles = ['viewer', 'editor', 'admin']

function Members({ project }: { project: string }) {
  const app = useApp()
  const base = `/api/v1/projects/${enc(project)}/members`
  const [list, setList] = useState<Member[] | null>(null)
  const [users, setUsers] = useState<UserInfo[]>([])
  const [err, setErr] = useState<unknown>(null)
  const [addErr, setAddErr] = useState<unknown>(null)
  const [user, setUser] = useState('')
  const [role, setRole] = useState('viewer')
  const [removing, setRemoving] = useState<Member | null>(null)
  const load = () => {
    setErr(null)
    get<{ members: Member[] }>(base)
      .then((r) => setList(r.members ?? []))
      .catch(setErr)
  }
  useEffect(() => {
    setList(null)
    load()
    // Organization admins pick from every user; others type a user id.
    if (app.user?.admin)
      get<{ users: UserInfo[] }>('/api/v1/users')
        .then((r) => setUsers(r.users ?? []))
        .catch(() => {})
  }, [project])
  const setMember = async (userID: string, r: string) => {
    await put(`${base}/${enc(userID)}`, { role: r })
    load()
  }
  const nameOf = (m: Member) => m.name || users.find((u) => u.id === m.user_id)?.name || m.user_id
  return (
    <div class="settings-body">
      <form
        class="card form inline-form"
        onSubmit={async (e) => {
          e.preventDefault()
          setAddErr(null)
          try {
            await setMember(user.trim(), role)
            app.toast('Member added')
            setUser('')
          } catch (e) {
            setAddErr(e)
          }
        }}
      >
        <h2>Add a member</h2>
        <div class="form-row">
          <label class="grow">
            User
            {users.length ? (
              <select value={user} onChange={(e) => setUser(e.currentTarget.value)} required aria-label="User">
                <option value="">Choose…</option>
                {users
                  .filter((u) => !list?.some((m) => m.user_id === u.id))
                  .map((u) => (
                    <option value={u.id}>{u.name}</option>
                  ))}
              </select>
            ) : (
              <input class="mono" value={user} onInput={(e) => setUser(e.currentTarget.value)} placeholder="user id" required aria-label="User id" />
            )}
          </label>
          <label>
            Role
            <select value={role} onChange={(e) => setRole(e.currentTarget.value)} aria-label="Role">
              {roles.map((r) => (
                <option value={r}>{r}</option>
              ))}
            </select>
          </label>
          <button class="btn primary">Add member</button>
        </div>
        <ErrorBox error={addErr} title="Not added" />
      </form>
      {err ? (
        <ErrorBox error={err} retry={load} />
      ) : !list ? (
        <Spinner />
      ) : list.length === 0 ? (
        <Empty title="No members">Organization admins see every project; add others with a role.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label={`Members of ${project}`}>
            <thead>
              <tr>
                <th>User</th>
                <th>Role</th>
                <th>Since</th>
                <th class="right">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map((m) => (
                <tr key={m.user_id}>
                  <td>
                    <span class="strong">{nameOf(m)}</span> <span class="muted mono small">{m.user_id}</span>
                  </td>
                  <td>
                    <select
                      value={m.role}
                      aria-label={`Role of ${nameOf(m)}`}
                      onChange={async (e) => {
                        const r = e.currentTarget.value
                        try {
                          await setMember(m.user_id, r)
                          app.toast(`${nameOf(m)} is now ${r}`)
                        } catch (x) {
                          app.toast((x as Error).message, 'error')
                          load()
                        }
                      }}
                    >
                      {roles.map((r) => (
                        <option value={r}>{r}</option>
                      ))}
                    </select>
                  </td>
                  <td>{ago(m.updated_at)}</td>
                  <td class="right">
                    <button class="btn small danger ghost" onClick={() => setRemoving(m)} aria-label={`Remove ${nameOf(m)}`}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {removing && (
        <Confirm
          title={`Remove ${nameOf(removing)}?`}
          action="Remove member"
          onClose={() => setRemoving(null)}
          run={async () => {
            await del(`${base}/${enc(removing.user_id)}`)
            app.toast(`${nameOf(removing)} removed from ${project}`)
            load()
          }}
        >
          {nameOf(removing)} loses access to {project}: its flows, runs, secrets and installations.
        </Confirm>
      )}
    </div>
  )
}

function Users() {
  const app = useApp()
  const [list, setList] = useState<UserInfo[] | null>(null)
  const [err, setErr] = useState<unknown>(null)
  const [name, setName] = useState('')
  const [admin, setAdmin] = useState(false)
  const [createErr, setCreateErr] = useState<unknown>(null)
  const load = () => {
    setErr(null)
    get<{ users: UserInfo[] }>('/api/v1/users')
      .then((r) => setList(r.users ?? []))
      .catch(setErr)
  }
  useEffect(load, [])
  return (
    <div class="settings-body">
      <form
        class="card form inline-form"
        onSubmit={async (e) => {
          e.preventDefault()
          setCreateErr(null)
          try {
            await post('/api/v1/users', { name: name.trim(), admin })
            app.toast(`User ${name.trim()} created`)
            setName('')
            setAdmin(false)
            load()
          } catch (e) {
            setCreateErr(e)
          }
        }}
      >
        <h2>New user</h2>
        <div class="form-row">
          <label class="grow">
            Name
            <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="ada" required aria-label="User name" />
          </label>
          <label class="check">
            <input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.currentTarget.checked)} /> Organization admin
          </label>
          <button class="btn primary">Create user</button>
        </div>
        <small class="muted">
          Give them a token with <code>hushflow token create --user ID --name …</code> and a role under Members.
        </small>
        <ErrorBox error={createErr} title="Not created" />
      </form>
      {err ? (
        <ErrorBox error={err} retry={load} />
      ) : !list ? (
        <Spinner />
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label="Users">
            <thead>
              <tr>
                <th>Name</th>
                <th>Id</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {list.map((u) => (
                <tr key={u.id}>
                  <td>
                    <span class="strong">{u.name}</span> {u.admin && <span class="tag">admin</span>}
                  </td>
                  <td class="mono small">{u.id}</td>
                  <td title={fullTime(u.created_at)}>{ago(u.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  )
}

const auditActions = ['resolve', 'read_denied', 'create', 'update', 'delete', 'rotate', 'redaction_load', 'decrypt_failure']

function Audit({ project }: { project: string }) {
  const app = useApp()
  const [list, setList] = useState<AuditRecord[] | null>(null)
  const [err, setErr] = useState<unknown>(null)
  const [secret, setSecret] = useState('')
  const [action, setAction] = useState('resolve')
  const [everywhere, setEverywhere] = useState(false)
  const [query, setQuery] = useState({ secret: '', everywhere: false })
  const load = () => {
    setErr(null)
    setList(null)
    get<{ records: AuditRecord[] }>('/api/v1/audit' + qs({ project: query.everywhere ? undefined : project, secret: query.secret || undefined, limit: '500' }))
      .then((r) => setList(r.records ?? []))
      .catch(setErr)
  }
  useEffect(load, [project, query])
  const shown = (list ?? []).filter((r) => !action || r.action === action)
  return (
    <div class="settings-body">
      <form
        class="card form inline-form"
        onSubmit={(e) => {
          e.preventDefault()
          setQuery({ secret: secret.trim(), everywhere })
        }}
      >
        <div class="form-row">
          <label class="grow">
            Secret
            <input class="mono" value={secret} onInput={(e) => setSecret(e.currentTarget.value)} placeholder="name or id (all when empty)" aria-label="Secret name or id" />
          </label>
          <label>
            Action
            <select value={action} onChange={(e) => setAction(e.currentTarget.value)} aria-label="Action">
              <option value="">any</option>
              {auditActions.map((a) => (
                <option value={a}>{a === 'resolve' ? 'read (resolve)' : a.replace('_', ' ')}</option>
              ))}
            </select>
          </label>
          {app.user?.admin && (
            <label class="check">
              <input type="checkbox" checked={everywhere} onChange={(e) => setEverywhere(e.currentTarget.checked)} /> Every project
            </label>
          )}
          <button class="btn">Filter</button>
        </div>
      </form>
      {err ? (
        <ErrorBox error={err} retry={load} />
      ) : !list ? (
        <Spinner />
      ) : shown.length === 0 ? (
        <Empty title="No records">No audit record matches: {action ? `action ${action}` : 'any action'}{query.secret ? `, secret ${query.secret}` : ''}.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label="Secret audit">
            <thead>
              <tr>
                <th>When</th>
                <th>Action</th>
                <th>Secret</th>
                <th>By</th>
                <th>Run</th>
                <th>Detail</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.id}>
                  <td title={fullTime(r.at)}>{ago(r.at)}</td>
                  <td>
                    <span class="tag">{r.action}</span>
                  </td>
                  <td>
                    <span class="mono strong">{r.secret_name}</span> {r.version ? <span class="muted">v{r.version}</span> : null}{' '}
                    <span class="muted small">{r.scope}</span>
                  </td>
                  <td>{r.actor}</td>
                  <td class="small">
                    {r.run_id ? (
                      <Link class="mono" href={`/p/${enc(r.run_project || project)}/runs/${enc(r.run_id)}`} title={r.run_id}>
                        …{r.run_id.slice(-8)}
                      </Link>
                    ) : (
                      '—'
                    )}
                    {r.block_id && <span class="muted"> · {r.block_id}</span>}
                    {r.run_environment && <span class="muted"> · {r.run_environment}</span>}
                  </td>
                  <td class="small muted">{r.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  )
}
