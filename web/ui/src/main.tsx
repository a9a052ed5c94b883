import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import './style.css'
import { AppProvider, useApp, createProject, type Toast } from './app'
import { Link, Redirect, match, navigate, useLocation } from './router'
import { Empty, ErrorBox, Modal, Spinner } from './ui'
import { SignIn } from './pages/SignIn'
import { FlowList } from './pages/FlowList'
import { FlowEditor } from './pages/FlowEditor'
import { Secrets } from './pages/Secrets'
import { Runs } from './pages/Runs'
import { RunInspector } from './pages/RunInspector'
import { Installations } from './pages/Installations'
import { Versions } from './pages/Versions'
import { Settings } from './pages/Settings'
import { Projects } from './pages/Projects'
import { Doctor } from './pages/Doctor'

const sections = [
  { key: 'flows', label: 'Flows', icon: '→' },
  { key: 'runs', label: 'Runs', icon: '▸' },
  { key: 'secrets', label: 'Secrets', icon: '✱' },
  { key: 'installations', label: 'Apps', icon: '◆' },
  { key: 'settings', label: 'Settings', icon: '⚙' },
]

function NewProject({ onClose }: { onClose: () => void }) {
  const app = useApp()
  const [name, setName] = useState('')
  const [err, setErr] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  return (
    <Modal title="New project" onClose={onClose}>
      <form
        class="form"
        onSubmit={async (e) => {
          e.preventDefault()
          setBusy(true)
          setErr(null)
          try {
            await createProject(name.trim())
            await app.reloadProjects()
            app.toast(`Project ${name} created`)
            onClose()
            navigate(`/p/${encodeURIComponent(name.trim())}/flows`)
          } catch (e) {
            setErr(e)
          } finally {
            setBusy(false)
          }
        }}
      >
        <label>
          Name
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="billing" pattern="[a-z0-9](?:[a-z0-9]|-)*" required autoFocus />
          <small>Lowercase letters, digits and dashes.</small>
        </label>
        <ErrorBox error={err} />
        <div class="form-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button class="btn primary" disabled={busy}>
            Create project
          </button>
        </div>
      </form>
    </Modal>
  )
}

function Sidebar({ project, section }: { project: string; section: string }) {
  const app = useApp()
  const [creating, setCreating] = useState(false)
  return (
    <aside class="sidebar">
      <div class="brand">
        <Link href="/">
          <span class="logo" aria-hidden="true" />
          Hushflow
        </Link>
      </div>
      <div class="switchers">
        <label>
          <span>Project</span>
          <select
            aria-label="Project"
            value={project}
            onChange={(e) => {
              const v = e.currentTarget.value
              if (v === '__new') {
                setCreating(true)
                return
              }
              navigate(`/p/${encodeURIComponent(v)}/${section || 'flows'}`)
            }}
          >
            {!project && <option value="">Choose…</option>}
            {(app.projects ?? []).map((p) => (
              <option value={p.name}>{p.name}</option>
            ))}
            {app.user?.admin && <option value="__new">+ New project…</option>}
          </select>
        </label>
        <label>
          <span>Environment</span>
          <select aria-label="Environment" value={app.environment} onChange={(e) => app.setEnvironment(e.currentTarget.value)}>
            {app.environments.map((e) => (
              <option value={e}>{e}</option>
            ))}
          </select>
        </label>
      </div>
      <nav aria-label="Sections">
        {project &&
          sections.map((s) => (
            <Link href={`/p/${encodeURIComponent(project)}/${s.key === 'settings' ? 'settings/tokens' : s.key}`} class={'nav-item' + (section === s.key ? ' active' : '')} aria-current={section === s.key ? 'page' : undefined}>
              <span class="nav-icon" aria-hidden="true">
                {s.icon}
              </span>
              {s.label}
            </Link>
          ))}
        <Link href="/projects" class={'nav-item' + (section === 'projects' ? ' active' : '')} aria-current={section === 'projects' ? 'page' : undefined}>
          <span class="nav-icon" aria-hidden="true">
            ▦
          </span>
          All projects
        </Link>
      </nav>
      <div class="sidebar-foot">
        <span class="who" title={app.user?.admin ? 'organization admin' : ''}>
          <span class="who-name">{app.user?.name}</span>
          {app.user?.admin && <span class="tag">admin</span>}
        </span>
        <button type="button" class="btn small ghost" onClick={() => app.signOut()}>
          Sign out
        </button>
      </div>
      {creating && <NewProject onClose={() => setCreating(false)} />}
    </aside>
  )
}

function Home() {
  const app = useApp()
  const [creating, setCreating] = useState(false)
  useEffect(() => {
    if (app.projects?.length) {
      const last = localStorage.getItem('hushflow.project')
      const p = app.projects.find((x) => x.name === last) ?? app.projects[0]
      navigate(`/p/${encodeURIComponent(p.name)}/flows`, true)
    }
  }, [app.projects])
  if (app.projectsError) return <ErrorBox error={app.projectsError} retry={app.reloadProjects} />
  if (!app.projects) return <Spinner />
  if (app.projects.length) return <Spinner />
  return (
    <Empty
      title="No projects yet"
      action={
        app.user?.admin ? (
          <button class="btn primary" onClick={() => setCreating(true)}>
            Create a project
          </button>
        ) : undefined
      }
    >
      {app.user?.admin ? 'Projects hold flows, runs, secrets and app installations.' : 'Ask an organization admin to add you to a project.'}
      {creating && <NewProject onClose={() => setCreating(false)} />}
    </Empty>
  )
}

function Routes() {
  const app = useApp()
  const { path } = useLocation()
  if (path === '/signin') return <SignIn />
  if (!app.user) return <Redirect to={'/signin' + (path !== '/' ? '?next=' + encodeURIComponent(path) : '')} />
  let m: Record<string, string> | null
  let page = null
  let project = ''
  let section = ''
  if ((m = match('/p/:project/flows', path))) page = <FlowList project={m.project} />
  else if ((m = match('/p/:project/flows/new', path))) page = <FlowEditor key="new" project={m.project} />
  else if ((m = match('/p/:project/flows/:flow', path))) page = <FlowEditor key={m.flow} project={m.project} flow={m.flow} />
  else if ((m = match('/p/:project/flows/:flow/versions', path))) page = <Versions key={m.flow} project={m.project} flow={m.flow} />
  else if ((m = match('/p/:project/runs', path))) page = <Runs project={m.project} />
  else if ((m = match('/p/:project/runs/:id', path))) page = <RunInspector key={m.id} project={m.project} id={m.id} />
  else if ((m = match('/p/:project/secrets', path))) page = <Secrets project={m.project} />
  else if ((m = match('/p/:project/installations', path))) page = <Installations project={m.project} />
  else if ((m = match('/p/:project/settings', path))) page = <Redirect to={`/p/${encodeURIComponent(m.project)}/settings/tokens`} />
  else if ((m = match('/p/:project/settings/:tab', path))) page = <Settings project={m.project} tab={m.tab} />
  else if (path === '/projects') {
    page = <Projects />
    section = 'projects'
  }
  else if ((m = match('/p/:project/doctor', path))) page = <Doctor project={m.project} />
  else if (path === '/') page = <Home />
  else page = <Empty title="Page not found" action={<Link href="/">Go home</Link>} />
  if (m && m.project) {
    project = m.project
    section = path.split('/')[3] ?? ''
    localStorage.setItem('hushflow.project', project)
  }
  return (
    <div class="shell">
      <Sidebar project={project} section={section} />
      <main class="main" id="main">
        {page}
      </main>
    </div>
  )
}

function Root() {
  const [toasts, setToasts] = useState<Toast[]>([])
  return (
    <AppProvider onToasts={setToasts}>
      <Routes />
      <div class="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div class={'toast ' + t.kind} key={t.id}>
            {t.text}
          </div>
        ))}
      </div>
    </AppProvider>
  )
}

render(<Root />, document.getElementById('app')!)
