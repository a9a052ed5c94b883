import { useEffect, useState } from 'preact/hooks'
import { get, enc, qs, type Run, type Flow } from '../api'
import { useApp } from '../app'
import { Link, navigate, useLocation } from '../router'
import { Empty, ErrorBox, PageHeader, Pill, Spinner, ago, duration } from '../ui'

const statuses = ['', 'queued', 'running', 'waiting', 'succeeded', 'failed', 'canceled']

export function Runs({ project }: { project: string }) {
  const app = useApp()
  const { search } = useLocation()
  const params = new URLSearchParams(search)
  const flow = params.get('flow') ?? ''
  const status = params.get('status') ?? ''
  const environment = params.get('environment') ?? ''
  const [runs, setRuns] = useState<Run[] | null>(null)
  const [next, setNext] = useState('')
  const [flows, setFlows] = useState<Flow[]>([])
  const [err, setErr] = useState<unknown>(null)

  const setFilter = (k: string, v: string) => {
    const p = new URLSearchParams(search)
    if (v) p.set(k, v)
    else p.delete(k)
    const s = p.toString()
    navigate(`/p/${enc(project)}/runs${s ? '?' + s : ''}`, true)
  }
  const load = (cursor = '') =>
    get<{ runs: Run[]; next_cursor: string }>(`/api/v1/projects/${enc(project)}/runs` + qs({ flow, status, environment, cursor, limit: '50' }))
      .then((r) => {
        setErr(null)
        setRuns((old) => (cursor && old ? [...old, ...(r.runs ?? [])] : r.runs ?? []))
        setNext(r.next_cursor ?? '')
      })
      .catch(setErr)

  useEffect(() => {
    setRuns(null)
    load()
  }, [project, flow, status, environment])
  useEffect(() => {
    get<{ flows: Flow[] }>(`/api/v1/projects/${enc(project)}/flows`)
      .then((r) => setFlows(r.flows ?? []))
      .catch(() => {})
  }, [project])
  // Refresh while something is queued, running or waiting.
  useEffect(() => {
    if (!runs?.some((r) => r.status === 'queued' || r.status === 'running' || r.status === 'waiting')) return
    const t = setTimeout(() => load(), 2000)
    return () => clearTimeout(t)
  }, [runs])

  return (
    <section>
      <PageHeader title="Runs" sub="Every run of this project's flows, newest first. Values of secrets are masked everywhere." />
      <div class="filters" role="search">
        <label>
          Flow
          <select value={flow} onChange={(e) => setFilter('flow', e.currentTarget.value)}>
            <option value="">All flows</option>
            {flows.map((f) => (
              <option value={f.name}>{f.name}</option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setFilter('status', e.currentTarget.value)}>
            {statuses.map((s) => (
              <option value={s}>{s || 'Any status'}</option>
            ))}
          </select>
        </label>
        <label>
          Environment
          <select value={environment} onChange={(e) => setFilter('environment', e.currentTarget.value)}>
            <option value="">Any environment</option>
            {app.environments.map((e) => (
              <option value={e}>{e}</option>
            ))}
          </select>
        </label>
      </div>
      {err ? (
        <ErrorBox error={err} retry={() => load()} />
      ) : !runs ? (
        <Spinner />
      ) : runs.length === 0 ? (
        <Empty title={flow || status || environment ? 'No runs match these filters' : 'No runs yet'}>Open a flow and press Run to start one.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th>Status</th>
                <th>Flow</th>
                <th>Environment</th>
                <th>Trigger</th>
                <th>Queued</th>
                <th>Duration</th>
                <th>Run</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.id} class="clickable" onClick={() => navigate(`/p/${enc(project)}/runs/${enc(r.id)}`)}>
                  <td>
                    <Pill status={r.status} />
                  </td>
                  <td>
                    {r.flow} <span class="muted mono">v{r.flow_version}</span>
                  </td>
                  <td>{r.environment}</td>
                  <td>{r.parent_run_id ? <span title={`started by block ${r.parent_block} of run ${r.parent_run_id}`}>sub-flow of {r.parent_block}</span> : r.trigger}</td>
                  <td title={r.queued_at}>{ago(r.queued_at)}</td>
                  <td class="mono">{duration(r.started_at, r.finished_at)}</td>
                  <td>
                    {/* A UUIDv7 starts with its timestamp: runs queued together share
                        their first characters, so the list shows the random end. */}
                    <Link href={`/p/${enc(project)}/runs/${enc(r.id)}`} class="mono" title={r.id} onClick={(e) => e.stopPropagation()}>
                      …{r.id.slice(-8)}
                    </Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {next && (
        <div class="more">
          <button class="btn" onClick={() => load(next)}>
            Load more
          </button>
        </div>
      )}
    </section>
  )
}
