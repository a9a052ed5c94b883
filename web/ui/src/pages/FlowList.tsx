import { useEffect, useState } from 'preact/hooks'
import { get, post, enc, type Flow } from '../api'
import { Link } from '../router'
import { Empty, ErrorBox, PageHeader, Pill, Spinner, ago } from '../ui'

export function FlowList({ project }: { project: string }) {
  const [flows, setFlows] = useState<Flow[] | null>(null)
  const [err, setErr] = useState<unknown>(null)
  const [q, setQ] = useState('')
  const [busy, setBusy] = useState('')
  // Pause stops the flow from starting runs, by any trigger; Resume lets it
  // start them again (docs/flows.md, "Pausing a flow").
  const togglePause = (f: Flow) => {
    setBusy(f.name)
    post<Flow>(`/api/v1/projects/${enc(project)}/flows/${enc(f.name)}/${f.paused_at ? 'resume' : 'pause'}`)
      .then((nf) => setFlows((fs) => (fs ?? []).map((x) => (x.id === nf.id ? { ...x, paused_at: nf.paused_at, paused_by: nf.paused_by } : x))))
      .catch(setErr)
      .finally(() => setBusy(''))
  }
  const load = () => {
    setErr(null)
    get<{ flows: Flow[] }>(`/api/v1/projects/${enc(project)}/flows`)
      .then((r) => setFlows(r.flows ?? []))
      .catch(setErr)
  }
  useEffect(() => {
    setFlows(null)
    load()
  }, [project])
  const newHref = `/p/${enc(project)}/flows/new`
  // Search by name, description-free: a flow's name, trigger or last status.
  const needle = q.trim().toLowerCase()
  const shown = (flows ?? []).filter((f) => !needle || f.name.includes(needle) || f.trigger_type.includes(needle) || (f.last_run?.status ?? '').includes(needle))
  return (
    <section>
      <PageHeader title="Flows" sub={`Flows of ${project}: a trigger and blocks whose fields are expressions.`}>
        {flows && flows.length > 0 && (
          <input type="search" class="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="Search flows" aria-label="Search flows" />
        )}
        <Link class="btn primary" href={newHref}>
          New flow
        </Link>
      </PageHeader>
      {err ? (
        <ErrorBox error={err} retry={load} />
      ) : !flows ? (
        <Spinner />
      ) : flows.length === 0 ? (
        <Empty
          title="No flows yet"
          action={
            <Link class="btn primary" href={newHref}>
              Create your first flow
            </Link>
          }
        >
          A flow runs blocks in order: call an API with a secret in a header, transform the answer in code, post it to Slack.
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Trigger</th>
                <th>Version</th>
                <th>Last run</th>
                <th>Updated</th>
                <th class="right">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.length === 0 && (
                <tr>
                  <td colSpan={6} class="muted">
                    No flow matches “{q}”.
                  </td>
                </tr>
              )}
              {shown.map((f) => (
                <tr key={f.id}>
                  <td>
                    <Link href={`/p/${enc(project)}/flows/${enc(f.name)}`} class="strong">
                      {f.name}
                    </Link>
                  </td>
                  <td>
                    <span class="tag">{f.trigger_type}</span>
                    {f.paused_at && (
                      <span class="tag paused" title={`Paused by ${f.paused_by} ${ago(f.paused_at)}: it starts no run until it is resumed`}>
                        paused
                      </span>
                    )}
                  </td>
                  <td class="mono">v{f.version}</td>
                  <td>
                    {f.last_run ? (
                      <Link href={`/p/${enc(project)}/runs/${enc(f.last_run.id)}`} class="last-run" title={`Run ${f.last_run.id}`}>
                        <Pill status={f.last_run.status} /> <span class="muted">{ago(f.last_run.finished_at ?? f.last_run.queued_at)}</span>
                      </Link>
                    ) : (
                      <span class="muted">never run</span>
                    )}
                  </td>
                  <td title={f.updated_at}>
                    {ago(f.updated_at)} <span class="muted">by {f.updated_by}</span>
                  </td>
                  <td class="right">
                    <button
                      class="btn small"
                      disabled={busy === f.name}
                      onClick={() => togglePause(f)}
                      title={f.paused_at ? 'Let the flow start runs again' : 'Stop the flow from starting runs, by any trigger, until it is resumed'}
                    >
                      {f.paused_at ? 'Resume' : 'Pause'}
                    </button>{' '}
                    <Link class="btn small" href={`/p/${enc(project)}/runs?flow=${enc(f.name)}`}>
                      Runs
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
