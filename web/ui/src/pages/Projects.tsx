import { useState } from 'preact/hooks'
import { enc } from '../api'
import { useApp, createProject } from '../app'
import { Link, navigate } from '../router'
import { Empty, ErrorBox, PageHeader, Spinner, ago, fullTime } from '../ui'

/** Projects lists the projects you can see (every project for organization admins) and creates one. */
export function Projects() {
  const app = useApp()
  const [name, setName] = useState('')
  const [err, setErr] = useState<unknown>(null)
  const [filter, setFilter] = useState('')
  const ps = (app.projects ?? []).filter((p) => p.name.includes(filter.trim().toLowerCase()))
  return (
    <section>
      <PageHeader title="Projects" sub={app.user?.admin ? 'Every project of the organization.' : 'The projects you are a member of.'}>
        <input type="search" class="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} placeholder="Search projects" aria-label="Search projects" />
      </PageHeader>
      {app.user?.admin && (
        <form
          class="card form inline-form"
          onSubmit={async (e) => {
            e.preventDefault()
            setErr(null)
            try {
              await createProject(name.trim())
              await app.reloadProjects()
              app.toast(`Project ${name.trim()} created`)
              navigate(`/p/${enc(name.trim())}/flows`)
            } catch (x) {
              setErr(x)
            }
          }}
        >
          <div class="form-row">
            <label class="grow">
              New project
              <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="billing" pattern="[a-z0-9](?:[a-z0-9]|-)*" required aria-label="New project name" />
            </label>
            <button class="btn primary">Create project</button>
          </div>
          <ErrorBox error={err} title="Not created" />
        </form>
      )}
      {app.projectsError ? (
        <ErrorBox error={app.projectsError} retry={app.reloadProjects} />
      ) : !app.projects ? (
        <Spinner />
      ) : ps.length === 0 ? (
        <Empty title={filter ? 'No project matches' : 'No projects yet'}>{filter ? `Nothing is named like “${filter}”.` : 'Ask an organization admin to add you to a project.'}</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table" aria-label="Projects">
            <thead>
              <tr>
                <th>Name</th>
                <th>Created</th>
                <th class="right">
                  <span class="sr-only">Sections</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {ps.map((p) => (
                <tr key={p.id}>
                  <td>
                    <Link class="strong" href={`/p/${enc(p.name)}/flows`}>
                      {p.name}
                    </Link>
                  </td>
                  <td title={fullTime(p.created_at)}>{ago(p.created_at)}</td>
                  <td class="right nowrap">
                    <Link class="btn small" href={`/p/${enc(p.name)}/runs`}>
                      Runs
                    </Link>{' '}
                    <Link class="btn small" href={`/p/${enc(p.name)}/secrets`}>
                      Secrets
                    </Link>{' '}
                    <Link class="btn small" href={`/p/${enc(p.name)}/settings/members`}>
                      Members
                    </Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}
