import { useState } from 'preact/hooks'
import { post, enc } from '../api'
import { useApp } from '../app'
import { ErrorBox, PageHeader, Spinner } from '../ui'
import { Link } from '../router'

// The redaction self-test (docs/doctor.md): the server plants a canary
// secret, pushes it in every form through every sink of a run and reports
// each as masked or leaked. The report never holds the value.

interface Result {
  sink: string
  form: string
  status: 'masked' | 'leaked' | 'skipped' | 'missing'
  detail?: string
}

interface Report {
  ok: boolean
  project: string
  environment: string
  database: string
  forms: string[]
  sinks: string[]
  results: Result[]
  leaked?: string[]
  elapsed: string
  notes?: string[]
}

export function Doctor({ project }: { project: string }) {
  const app = useApp()
  const env = app.environment // the sidebar's environment
  const [busy, setBusy] = useState(false)
  const [err, setErr] = useState<unknown>(null)
  const [rep, setRep] = useState<Report | null>(null)

  const run = async () => {
    setBusy(true)
    setErr(null)
    setRep(null)
    try {
      setRep(await post<Report>(`/api/v1/projects/${enc(project)}/doctor/redaction`, { environment: env }))
    } catch (e) {
      setErr(e)
    } finally {
      setBusy(false)
    }
  }
  const count = (s: string) => rep?.results.filter((r) => r.status === s).length ?? 0

  return (
    <section>
      <PageHeader
        title="Redaction self-test"
        sub={
          <>
            Plants a random canary secret, pushes it in every encoding through every sink of a throwaway run (logs, errors, outputs, HTTP records, exec
            output, the API, the live stream, the database, the server log) and reports each as masked or leaked; then deletes the canary, the flow and the
            run. <Link href={`/p/${enc(project)}/secrets`}>Back to secrets</Link>
          </>
        }
      />
      <div class="filters">
        <span class="muted">
          Runs in <strong>{env}</strong> (the environment chosen in the sidebar).
        </span>
        <button class="btn primary" disabled={busy} onClick={run}>
          Run redaction self-test
        </button>
      </div>
      {busy && <Spinner label="Running the self-test (a few seconds)…" />}
      {err ? <ErrorBox error={err} retry={run} title="The self-test could not run" /> : null}
      {rep && (
        <>
          <p class={rep.ok ? 'strong' : 'warn'} role="status" data-testid="doctor-summary">
            {rep.ok ? 'All masked' : `Leaked in ${(rep.leaked ?? []).join(', ')}`}: {rep.sinks.length} sinks × {rep.forms.length} forms in {rep.environment} (
            {rep.database}, {rep.elapsed}): {count('masked')} masked, {count('leaked')} leaked, {count('missing')} missing, {count('skipped')} skipped
          </p>
          <div class="table-wrap">
            <table class="table" aria-label="Self-test results">
              <thead>
                <tr>
                  <th>Sink</th>
                  <th>Form</th>
                  <th>Status</th>
                  <th>Detail</th>
                </tr>
              </thead>
              <tbody>
                {rep.results.map((r) => (
                  <tr>
                    <td class="mono">{r.sink}</td>
                    <td class="mono">{r.form}</td>
                    <td>
                      <span class={`pill pill-${r.status === 'masked' ? 'succeeded' : r.status === 'skipped' ? 'skipped' : 'failed'}`}>{r.status}</span>
                    </td>
                    <td class="muted">{r.detail}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {rep.notes?.map((n) => (
            <p class="muted">{n}</p>
          ))}
        </>
      )}
    </section>
  )
}
