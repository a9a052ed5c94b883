import { useEffect, useState } from 'preact/hooks'
import { get, post, enc, type Flow, type FlowVersion } from '../api'
import { useApp } from '../app'
import { Link } from '../router'
import { canonical, hunks, lineDiff } from '../diff'
import { Empty, ErrorBox, Modal, PageHeader, Spinner, ago, fullTime } from '../ui'

/** Versions lists a flow's versions, shows a line diff between any two, and rolls back to one. */
export function Versions({ project, flow }: { project: string; flow: string }) {
  const app = useApp()
  const base = `/api/v1/projects/${enc(project)}/flows/${enc(flow)}`
  const [versions, setVersions] = useState<FlowVersion[] | null>(null)
  const [err, setErr] = useState<unknown>(null)
  const [from, setFrom] = useState(0)
  const [to, setTo] = useState(0)
  const [defs, setDefs] = useState<Record<number, string>>({})
  const [diffErr, setDiffErr] = useState<unknown>(null)
  const [confirm, setConfirm] = useState<number | null>(null)
  const [all, setAll] = useState(false)

  const load = () => {
    setErr(null)
    get<{ versions: FlowVersion[] }>(`${base}/versions`)
      .then((r) => {
        const vs = r.versions ?? []
        setVersions(vs)
        // Newest against the one before it, to start with.
        setTo(vs[0]?.version ?? 0)
        setFrom(vs[1]?.version ?? vs[0]?.version ?? 0)
      })
      .catch(setErr)
  }
  useEffect(load, [project, flow])

  // The definitions of the two versions compared (each fetched once).
  useEffect(() => {
    setDiffErr(null)
    for (const v of [from, to]) {
      if (!v || defs[v] !== undefined) continue
      get<FlowVersion>(`${base}/versions/${v}`)
        .then((r) => setDefs((d) => ({ ...d, [v]: canonical(r.definition) })))
        .catch(setDiffErr)
    }
  }, [from, to])

  const current = versions?.[0]?.version
  const ready = defs[from] !== undefined && defs[to] !== undefined
  const lines = ready ? lineDiff(defs[from], defs[to]) : []
  const changed = lines.filter((l) => l.kind !== 'same').length
  const shown = all ? lines : hunks(lines)

  return (
    <section class="versions-page">
      <PageHeader
        title={
          <>
            <Link href={`/p/${enc(project)}/flows/${enc(flow)}`} class="mono">
              {flow}
            </Link>{' '}
            <span class="muted">versions</span>
          </>
        }
        sub="Every save is a version. Compare any two; Roll back saves an earlier definition as a new version."
      >
        <Link class="btn" href={`/p/${enc(project)}/flows/${enc(flow)}`}>
          Back to the editor
        </Link>
      </PageHeader>
      {err ? (
        <ErrorBox error={err} retry={load} />
      ) : !versions ? (
        <Spinner />
      ) : versions.length === 0 ? (
        <Empty title="No versions">This flow has no saved version.</Empty>
      ) : (
        <div class="versions-grid">
          <div class="card versions-list">
            <h2>History</h2>
            <table class="table compact">
              <thead>
                <tr>
                  <th>Version</th>
                  <th>Saved</th>
                  <th class="right">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {versions.map((v) => (
                  <tr key={v.version} class={v.version === from || v.version === to ? 'selected' : ''}>
                    <td class="mono">
                      v{v.version} {v.version === current && <span class="tag">current</span>}
                    </td>
                    <td title={fullTime(v.created_at)}>
                      {ago(v.created_at)} <span class="muted">by {v.created_by}</span>
                    </td>
                    <td class="right">
                      {v.version !== current && (
                        <button class="btn small" onClick={() => setConfirm(v.version)} aria-label={`Roll back to version ${v.version}`}>
                          Roll back
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="card versions-diff">
            <div class="form-row">
              <label>
                From
                <select aria-label="Compare from version" value={from} onChange={(e) => setFrom(Number(e.currentTarget.value))}>
                  {versions.map((v) => (
                    <option value={v.version}>v{v.version}</option>
                  ))}
                </select>
              </label>
              <label>
                To
                <select aria-label="Compare to version" value={to} onChange={(e) => setTo(Number(e.currentTarget.value))}>
                  {versions.map((v) => (
                    <option value={v.version}>v{v.version}</option>
                  ))}
                </select>
              </label>
              <label class="check">
                <input type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} /> Whole definition
              </label>
            </div>
            <ErrorBox error={diffErr} />
            {!ready ? (
              !diffErr && <Spinner label="Loading definitions…" />
            ) : (
              <>
                <p class="muted small" role="status">
                  {from === to ? 'The same version.' : changed === 0 ? `v${from} and v${to} have the same definition.` : `${changed} line${changed === 1 ? '' : 's'} changed from v${from} to v${to}.`}
                </p>
                <pre class="diff" aria-label={`Changes from version ${from} to version ${to}`}>
                  {shown.map((l) =>
                    l === null ? (
                      <div class="diff-gap">⋯</div>
                    ) : (
                      <div class={'diff-' + l.kind}>
                        <span class="diff-sign" aria-hidden="true">
                          {l.kind === 'add' ? '+' : l.kind === 'del' ? '−' : ' '}
                        </span>
                        {l.text}
                      </div>
                    ),
                  )}
                </pre>
              </>
            )}
          </div>
        </div>
      )}
      {confirm !== null && (
        <Rollback
          flow={flow}
          version={confirm}
          current={current ?? 0}
          onClose={() => setConfirm(null)}
          onDone={async (f) => {
            setConfirm(null)
            setDefs({})
            app.toast(`${flow} rolled back to v${confirm}: now v${f.version}`)
            load()
          }}
          run={() => post<Flow & { unchanged?: boolean }>(`${base}/rollback`, { version: confirm })}
        />
      )}
    </section>
  )
}

function Rollback(props: { flow: string; version: number; current: number; onClose: () => void; onDone: (f: Flow) => void; run: () => Promise<Flow> }) {
  const [err, setErr] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  return (
    <Modal title={`Roll back to v${props.version}?`} onClose={props.onClose}>
      <p>
        The definition of <strong class="mono">v{props.version}</strong> is saved as a new version of <strong class="mono">{props.flow}</strong> (v{props.current + 1}). Versions v
        {props.version + 1}–v{props.current} stay in the history; new runs use the rolled-back definition.
      </p>
      <ErrorBox error={err} title="Not rolled back" />
      <div class="form-actions">
        <button type="button" class="btn" onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          class="btn primary"
          disabled={busy}
          onClick={async () => {
            setBusy(true)
            setErr(null)
            try {
              props.onDone(await props.run())
            } catch (e) {
              setErr(e)
            } finally {
              setBusy(false)
            }
          }}
        >
          Roll back
        </button>
      </div>
    </Modal>
  )
}
