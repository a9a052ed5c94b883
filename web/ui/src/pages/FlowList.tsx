import { useEffect, useState } from 'preact/hooks'
import { get, enc, type Flow } from '../api'
import { Link } from '../router'
import { Empty, ErrorBox, PageHeader, Spinner, ago } from '../ui'

export function FlowList({ project }: { project: string }) {
  const [flows, setFlows] = useState<Flow[] | null>(null)
  const [err, setErr] = useState<unknown>(null)
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
  return (
    <section>
      <PageHeader title="Flows" sub={`Flows of ${project}: a trigger and blocks whose fields are expressions.`}>
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
                <th>Updated</th>
                <th class="right">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {flows.map((f) => (
                <tr key={f.id}>
                  <td>
                    <Link href={`/p/${enc(project)}/flows/${enc(f.name)}`} class="strong">
                      {f.name}
                    </Link>
                  </td>
                  <td>
                    <span class="tag">{f.trigger_type}</span>
                  </td>
                  <td class="mono">v{f.version}</td>
                  <td title={f.updated_at}>
                    {ago(f.updated_at)} <span class="muted">by {f.updated_by}</span>
                  </td>
                  <td class="right">
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
