import { useEffect, useRef, useState } from 'preact/hooks'
import { get, post, enc, type Definition, type Flow, type Run, type RunEvent } from '../api'
import { useApp } from '../app'
import { Link, navigate } from '../router'
import { ErrorBox, JSONView, PageHeader, Pill, Spinner, duration, fullTime } from '../ui'
import { EventLine, Timeline, groupByBlock } from './RunTimeline'

// Event types the executor and blocks emit; EventSource delivers named
// events only to listeners of that name.
const eventTypes = [
  'run_queued', 'run_started', 'run_finished', 'run_canceled', 'run_failed', 'run_resumed', 'run_released',
  'block_started', 'block_finished', 'block_failed', 'block_skipped', 'block_retry', 'block_waiting', 'block_interrupted',
  'iteration_started', 'iteration_finished', 'iteration_failed', 'iteration_skipped', 'iteration_retry', 'iteration_interrupted',
  'flow_started', 'on_error_started', 'on_error_finished', 'egress_refused',
  'log', 'http_request', 'http_response', 'debug', 'events_truncated', 'message',
]

const finished = (s?: string) => s === 'succeeded' || s === 'failed' || s === 'canceled'

export function RunInspector({ project, id }: { project: string; id: string }) {
  const app = useApp()
  const [run, setRun] = useState<Run | null>(null)
  const [events, setEvents] = useState<RunEvent[]>([])
  const [err, setErr] = useState<unknown>(null)
  const [live, setLive] = useState(false)
  const [showRaw, setShowRaw] = useState(false)
  const [types, setTypes] = useState<Record<string, string>>({})
  const seqs = useRef(new Set<number>())
  const lastSeq = useRef(0)

  const add = (list: RunEvent[]) => {
    const fresh = list.filter((e) => !seqs.current.has(e.seq))
    if (!fresh.length) return
    fresh.forEach((e) => {
      seqs.current.add(e.seq)
      lastSeq.current = Math.max(lastSeq.current, e.seq)
    })
    setEvents((old) => [...old, ...fresh].sort((a, b) => a.seq - b.seq))
  }
  const loadRun = () =>
    get<Run>(`/api/v1/runs/${enc(id)}`)
      .then((r) => {
        setRun(r)
        return r
      })
      .catch((e) => {
        setErr(e)
        return null
      })

  useEffect(() => {
    let es: EventSource | null = null
    let closed = false
    let retry: ReturnType<typeof setTimeout> | undefined
    const follow = () => {
      if (closed) return
      es = new EventSource(`/api/v1/runs/${enc(id)}/events?follow=1&after=${lastSeq.current}`)
      setLive(true)
      const onEvent = (m: MessageEvent) => {
        try {
          add([JSON.parse(m.data)])
        } catch {
          /* ignore a malformed line */
        }
      }
      eventTypes.forEach((t) => es!.addEventListener(t, onEvent as EventListener))
      es.addEventListener('run_finished', () => loadRun())
      es.addEventListener('end', () => {
        es?.close()
        setLive(false)
        // Pick up anything of an unknown type, and the final state.
        get<{ events: RunEvent[] }>(`/api/v1/runs/${enc(id)}/events`).then((r) => add(r.events ?? []))
        loadRun()
      })
      es.onerror = () => {
        es?.close()
        setLive(false)
        loadRun().then((r) => {
          if (r && !finished(r.status)) retry = setTimeout(follow, 1500)
          else get<{ events: RunEvent[] }>(`/api/v1/runs/${enc(id)}/events`).then((x) => add(x.events ?? []))
        })
      }
    }
    loadRun().then((r) => {
      if (!r) return
      if (finished(r.status)) get<{ events: RunEvent[] }>(`/api/v1/runs/${enc(id)}/events`).then((x) => add(x.events ?? [])).catch(setErr)
      else follow()
    })
    return () => {
      closed = true
      clearTimeout(retry)
      es?.close()
    }
  }, [id])

  // Block types from the flow's definition, when its current version is the
  // one this run used (an older version may have given an id another type).
  useEffect(() => {
    if (!run) return
    let stale = false
    get<Flow & { definition: Definition }>(`/api/v1/projects/${enc(project)}/flows/${enc(run.flow)}`)
      .then((f) => {
        if (stale || f.version !== run.flow_version) return
        setTypes(Object.fromEntries((f.definition?.blocks ?? []).map((b) => [b.id, b.type])))
      })
      .catch(() => {
        /* the flow may have been deleted since: the events' types remain */
      })
    return () => {
      stale = true
    }
  }, [project, run?.flow, run?.flow_version])

  if (err) return <ErrorBox error={err} retry={() => location.reload()} />
  if (!run) return <Spinner label="Loading run…" />
  const blocks = groupByBlock(events, types)
  const started = events.find((e) => e.type === 'run_started')
  const runEvents = events.filter((e) => !e.block)
  return (
    <section class="inspector">
      <PageHeader
        title={
          <>
            <Link href={`/p/${enc(project)}/flows/${enc(run.flow)}`}>{run.flow}</Link> <span class="muted mono">v{run.flow_version}</span> <Pill status={run.status} />
          </>
        }
        sub={
          <>
            Run <span class="mono">{run.id}</span> · {run.environment} · {run.trigger} by {run.created_by}
            {run.rerun_of && (
              <>
                {' '}
                · rerun of{' '}
                <Link class="mono" href={`/p/${enc(project)}/runs/${enc(run.rerun_of)}`} title={run.rerun_of}>
                  …{run.rerun_of.slice(-8)}
                </Link>
              </>
            )}
          </>
        }
      >
        {live && (
          <span class="live" title="Updating live">
            <span class="dot" /> live
          </span>
        )}
        {!finished(run.status) && (
          <button
            class="btn danger"
            onClick={async () => {
              try {
                setRun(await post<Run>(`/api/v1/runs/${enc(id)}/cancel`))
                app.toast('Cancel requested')
              } catch (e) {
                app.toast((e as Error).message, 'error')
              }
            }}
          >
            Cancel run
          </button>
        )}
        <button
          class="btn"
          title="A new run of this flow (its current version) in the same environment with the same input"
          onClick={async () => {
            try {
              const r = await post<Run>(`/api/v1/runs/${enc(id)}/rerun`)
              app.toast('Run again: started')
              navigate(`/p/${enc(project)}/runs/${enc(r.id)}`)
            } catch (e) {
              app.toast((e as Error).message, 'error')
            }
          }}
        >
          ↻ Run again
        </button>
        <Link class="btn" href={`/p/${enc(project)}/runs?flow=${enc(run.flow)}`}>
          All runs of {run.flow}
        </Link>
      </PageHeader>

      <dl class="facts">
        <div>
          <dt>Queued</dt>
          <dd>{fullTime(run.queued_at)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{fullTime(run.started_at) || '—'}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd class="mono">{duration(run.started_at, run.finished_at) || '—'}</dd>
        </div>
        <div>
          <dt>Blocks</dt>
          <dd>{blocks.length}</dd>
        </div>
        {(run.resumes ?? 0) > 0 && (
          <div>
            <dt>Resumed</dt>
            <dd title={run.resume_reason}>{run.resumes === 1 ? 'once' : `${run.resumes} times`}</dd>
          </div>
        )}
      </dl>

      {run.parent_run_id && (
        <p class="muted" data-testid="parent-run">
          Started by block <span class="mono">{run.parent_block}</span> of run{' '}
          <Link href={`/p/${enc(project)}/runs/${enc(run.parent_run_id)}`} class="mono">
            {run.parent_run_id}
          </Link>
        </p>
      )}
      {(run.children?.length ?? 0) > 0 && (
        <div class="children" data-testid="child-runs">
          <h2>Sub-flow runs</h2>
          <ul>
            {run.children!.map((c) => (
              <li key={c.id}>
                <span class="mono">{c.parent_block}</span> →{' '}
                <Link href={`/p/${enc(project)}/runs/${enc(c.id)}`}>{c.flow}</Link> <Pill status={c.status} />
              </li>
            ))}
          </ul>
        </div>
      )}
      {run.status === 'waiting' && run.available_at && (
        <div class="alert info" role="status">
          <strong>Waiting</strong> until {fullTime(run.available_at)}: the run holds no worker meanwhile and resumes on any replica.
        </div>
      )}
      {!finished(run.status) && (run.resumes ?? 0) > 0 && run.resume_reason && (
        <div class="alert info" role="status">
          <strong>Resumed</strong> after an interruption: {run.resume_reason}.
        </div>
      )}

      {run.error && (
        <div class="alert error" role="alert">
          <strong>Run failed</strong>
          <span class="mono pre">{run.error}</span>
        </div>
      )}

      <div class="grid-2">
        <div class="card">
          <h2>Input</h2>
          {started?.data?.input !== undefined ? <JSONView value={started.data.input} /> : <p class="muted">No input.</p>}
        </div>
        <div class="card">
          <h2>Output</h2>
          {run.output !== undefined ? <JSONView value={run.output} /> : <p class="muted">{finished(run.status) ? 'No output.' : 'Not finished yet.'}</p>}
        </div>
      </div>

      <h2 class="section-title">Timeline</h2>
      {blocks.length === 0 && (finished(run.status) ? <p class="muted">No block ran.</p> : <Spinner label="Waiting for the first block…" />)}
      <Timeline blocks={blocks} run={run} project={project} live={live} />

      <div class="raw-toggle">
        <button class="btn small ghost" aria-expanded={showRaw} onClick={() => setShowRaw(!showRaw)}>
          {showRaw ? 'Hide' : 'Show'} all {events.length} events
        </button>
      </div>
      {showRaw && (
        <div class="card events raw">
          {events.map((e) => (
            <EventLine e={e} key={e.seq} />
          ))}
        </div>
      )}
      {runEvents.some((e) => e.type === 'events_truncated') && <p class="muted">Some events were dropped: the run reached its event limit.</p>}
    </section>
  )
}
